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

import numpy as np

from . import safetensors
from .serialize import build_model, group, load_arrays, save_arrays

if TYPE_CHECKING:  # for annotations only: the imports happen on use
    from .data.transforms import Normalize
    from .nn import Module

SUFFIXES = (".npz", ".safetensors")
_RESERVED = ("spec", "handprop")


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
    suffix = _suffix(path)
    meta = dict(meta or {})
    taken = [k for k in _RESERVED if k in meta]
    if taken:
        raise ValueError(f"{path}: meta key {taken[0]!r} is reserved for handprop's own use")
    try:
        meta_json = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: meta must be plain JSON (finite numbers, str, lists, dicts): {e}") from None
    spec = registry.layer_config(model)
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    if normalize is not None:
        arrays.update({f"normalize.{k}": v for k, v in normalize.state_dict().items()})
    if suffix == ".npz":
        return save_arrays(path, arrays, {**meta, "handprop": __version__, "spec": spec})
    return safetensors.save_file(arrays, path, {"handprop": __version__, "spec": json.dumps(spec),
                                                "meta": meta_json})


def load(path: str | os.PathLike, with_meta: bool = False) -> Module | SavedModel:
    """The model saved in ``path`` by :func:`save` (or ``handprop train``), rebuilt from the file
    alone; with ``with_meta=True`` a :class:`SavedModel` ``(model, normalize or None, meta)``."""
    from .data.transforms import Normalize

    path = Path(path)
    if _suffix(path) == ".npz":
        arrays, meta = load_arrays(path)
        spec = meta.pop("spec", None)
        meta.pop("handprop", None)
    else:
        arrays, metadata = safetensors.load_file(path)
        spec, meta = _json(path, metadata, "spec"), _json(path, metadata, "meta", default={})
    if spec is None:
        raise ValueError(f"{path}: no architecture inside; not a handprop model file "
                         "(a PyTorch state dict is read by `handprop import`)")
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: meta must be a JSON object, got {type(meta).__name__}")
    try:
        model = build_model(spec)
        load_weights(model, group(arrays, "model"), "weights")
        norm_state = group(arrays, "normalize")
        normalize = Normalize() if norm_state else None
        if normalize is not None:
            normalize.load_state_dict(norm_state)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return SavedModel(model, normalize, meta) if with_meta else model


def load_weights(model: Module, state: Mapping[str, np.ndarray], where: str) -> None:
    """``model.load_state_dict(state)``, first cast to the weights' float dtype (so a float64
    model comes back float64, exactly; integer buffers such as BatchNorm's counter keep theirs);
    mismatches are ValueErrors naming ``where``."""
    dtypes = sorted({np.asarray(a).dtype.name for a in state.values()} - {"int64"})
    if dtypes and not (len(dtypes) == 1 and np.issubdtype(dtypes[0], np.floating)):
        raise ValueError(f"{where}: the weights must share one float dtype, got {', '.join(dtypes)}")
    if dtypes:
        model.to(np.dtype(dtypes[0]))
    try:
        model.load_state_dict(dict(state))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _suffix(path: Path) -> str:
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{path}: expected a {' or '.join(SUFFIXES)} file, got suffix {path.suffix!r}")
    return path.suffix


def _json(path: Path, metadata: Mapping[str, str], key: str, default: Any = None) -> Any:
    """``metadata[key]`` decoded from JSON (``default`` when absent)."""
    if key not in metadata:
        return default
    try:
        return json.loads(metadata[key])
    except ValueError as e:
        raise ValueError(f"{path}: __metadata__[{key!r}] is not valid JSON ({e})") from None
