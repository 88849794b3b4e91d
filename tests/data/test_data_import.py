"""`import handprop.data` loads only NumPy and the standard library (no tqdm, no urllib)."""
from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import json, sys
before = set(sys.modules)
import handprop.data
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_import_is_light():
    out = subprocess.run([sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout.strip().splitlines()[-1])}
    allowed = set(sys.stdlib_module_names) | {"numpy", "handprop", "cython_runtime"}
    assert sorted(m for m in loaded - allowed if not m.startswith("_cython_")) == []
    assert not loaded & {"tqdm", "http", "ssl"}  # the downloader loads these on use
