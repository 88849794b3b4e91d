"""``handprop.save`` / ``handprop.load``: a model and its architecture in one file, no pickle.

>>> hp.save(model, "mlp.safetensors", normalize=norm)   # doctest: +SKIP
>>> model = hp.load("mlp.safetensors")                   # doctest: +SKIP
>>> model, normalize, meta = hp.load("mlp.safetensors", with_meta=True)  # doctest: +SKIP

The suffix picks the container: ``.npz`` (NumPy, as ``handprop train`` writes) or
``.safetensors`` (read by PyTorch, JAX, Rust...). Both hold the same things: the weights as
``model.<name>`` in handprop's layout, the input normalisation as ``normalize.mean``/``.std``,
and the architecture (the layer config of :func:`handprop.nn.registry.layer_config`) from which
:func:`load` rebuilds the model, every argument checked. In a ``.safetensors`` file the
architecture and ``meta`` are JSON strings in ``__metadata__`` (``"spec"``, ``"meta"``, beside
``"handprop"``: the version that wrote it).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

from . import safetensors
from .errors import UsageError
from .serialize import model_arrays, save_arrays

if TYPE_CHECKING:  # for annotations only: the imports happen on use
    from .data.transforms import Normalize
    from .nn import Module

SUFFIXES = (".npz", ".safetensors")
_RESERVED = ("spec", "handprop", "kind")


class SavedModel(NamedTuple):
    """What :func:`load` returns with ``with_meta=True``."""

    model: Module
    normalize: Normalize | None
    meta: dict[str, Any]


def save(model: Module, path: str | os.PathLike, normalize: Normalize | None = None,
         meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (weights and architecture), its input ``normalize`` and JSON ``meta`` to
    ``path`` (``.npz`` or ``.safetensors``), atomically."""
    from . import __version__
    from .nn import registry

    path = Path(path)
    suffix = _checked_suffix(path).suffix
    meta = dict(meta or {})
    taken = [k for k in _RESERVED if k in meta]
    if taken:
        raise UsageError(f"{path}: meta key {taken[0]!r} is reserved for handprop's own use")
    try:
        meta_json = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{path}: meta must be plain JSON (finite numbers, str, lists, dicts): {e}") from None
    spec = registry.layer_config(model)
    arrays = model_arrays(model, normalize)
    if suffix == ".npz":
        return save_arrays(path, arrays, {"kind": "model", "handprop": __version__, "spec": spec, "meta": meta})
    return safetensors.save_file(arrays, path, {"handprop": __version__, "spec": json.dumps(spec),
                                                "meta": meta_json})


def load(path: str | os.PathLike, with_meta: bool = False) -> Module | SavedModel:
    """The model saved in ``path`` by :func:`save` (or ``handprop train``), rebuilt from the file
    alone, after the file has been checked like every model file (see :mod:`handprop.model_file`);
    with ``with_meta=True`` a :class:`SavedModel` ``(model, normalize or None, meta)``, ``meta``
    being what :func:`save` was given (or what ``handprop train`` recorded)."""
    from .model_file import read_model_file

    checked = read_model_file(_checked_suffix(Path(path)), "model")
    meta = {k: v for k, v in checked.meta.items() if k not in ("kind", "spec", "handprop", "meta")}
    meta.update(checked.meta.get("meta", {}))
    model = checked.build_model()
    return SavedModel(model, checked.normalize, meta) if with_meta else model


def _checked_suffix(path: Path) -> Path:
    if path.suffix not in SUFFIXES:
        raise UsageError(f"{path}: expected a {' or '.join(SUFFIXES)} file, got suffix {path.suffix!r}")
    return path
