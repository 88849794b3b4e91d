"""`import handprop` needs only NumPy and the standard library, and exposes its public API."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import handprop

_PROBE = r"""
import json, sys
before = set(sys.modules)  # the interpreter's own start-up (site, .pth hooks)
import handprop
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _is_cython_runtime(name: str) -> bool:
    """Bookkeeping modules Cython-compiled extensions (numpy.random) register; not imports."""
    return name == "cython_runtime" or name.startswith("_cython_")


def _modules_loaded_by_import() -> list[str]:
    out = subprocess.run([sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_only_numpy_and_stdlib():
    loaded = _modules_loaded_by_import()
    assert "handprop" in loaded and "numpy" in loaded
    allowed = set(sys.stdlib_module_names) | {"numpy", "handprop"}
    foreign = sorted({name.split(".")[0] for name in loaded if not _is_cython_runtime(name)} - allowed)
    assert foreign == [], f"`import handprop` loaded non-stdlib modules: {foreign}"


def test_import_does_not_load_heavy_optional_libraries():
    loaded = {name.split(".")[0] for name in _modules_loaded_by_import()}
    for heavy in ("torch", "tqdm", "matplotlib", "scipy", "pandas", "hypothesis"):
        assert heavy not in loaded, f"`import handprop` loaded {heavy}"


def test_public_api_is_exported():
    for name in ("nn", "optim", "manual_seed", "gradcheck", "GradcheckError",
                 "assert_close", "assert_near_zero", "__version__"):
        assert name in handprop.__all__
        if name not in ("Tensor", "no_grad"):
            assert hasattr(handprop, name), name
    for name in handprop.nn.__all__:
        assert hasattr(handprop.nn, name), name
    for name in handprop.optim.__all__:
        assert hasattr(handprop.optim, name), name
    assert isinstance(handprop.__version__, str)


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="module 'handprop' has no attribute 'no_such_thing'"):
        handprop.no_such_thing  # noqa: B018


def test_manual_seed_returns_a_seeded_generator():
    a = handprop.manual_seed(3).standard_normal(4)
    b = handprop.manual_seed(3).standard_normal(4)
    np.testing.assert_array_equal(a, b)
