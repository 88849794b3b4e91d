"""Saving arrays safely: atomic writes and ``.npz`` weights that never need pickle."""
from __future__ import annotations

import contextlib
import json
import os
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

if TYPE_CHECKING:  # for annotations only: serialize stays importable without nn or data
    from .data.transforms import Normalize
    from .nn import Module, Sequential

_META_KEY = "__meta__"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a new temporary file beside ``path``; on success fsync it and rename it onto ``path``.

    A crash, a full disk or an exception inside the block leaves ``path`` untouched (the old
    file or none) and removes the temporary, so a reader never sees a torn file. The file is
    created with the usual umask-governed permissions.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``arrays`` (and JSON-serialisable ``meta``) to an ``.npz`` file, atomically."""
    path = Path(path)
    if _META_KEY in arrays:
        raise ValueError(f"array name {_META_KEY!r} is reserved for metadata")
    payload = {name: np.asarray(a) for name, a in arrays.items()}
    for name, a in payload.items():
        if a.dtype == object:
            raise ValueError(f"{path}: array {name!r} has dtype object, which .npz cannot store without pickle")
    payload[_META_KEY] = np.array(json.dumps(dict(meta or {})))
    with atomic_write(path) as f:
        np.savez(f, **payload)
    return path


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read an ``.npz`` written by :func:`save_arrays`: (arrays, meta). Never unpickles."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable .npz weights file ({e})") from None
    meta_raw = arrays.pop(_META_KEY, None)
    meta = json.loads(str(meta_raw)) if meta_raw is not None else {}
    return arrays, meta


# -- models: weights + the layer list (spec) + input normalisation, in one .npz ------------------

def build_model(spec: list[dict[str, Any]] | dict[str, Any]) -> Module:
    """A model from its description: a layer config (:func:`handprop.nn.registry.layer_config`) or,
    as model files store an MLP, a list of layer configs meaning a Sequential of them.

    Every argument is checked against the layer's registration; weights are then loaded (or
    initialised) by the caller.
    """
    from .nn import Module, registry

    if isinstance(spec, list):
        spec = {"type": "Sequential", "layers": spec}
    return registry.build(spec, "model spec", Module)


def save_model(path: str | os.PathLike, model: Module | Mapping[str, np.ndarray], spec: list[dict[str, Any]],
               normalize: Normalize | None = None,
               meta: Mapping[str, Any] | None = None, extra: Mapping[str, np.ndarray] | None = None) -> Path:
    """Weights (``model.<name>``), normalisation (``normalize.mean/std``), spec and ``meta``, atomically.

    ``model`` is a Module or a state dict from ``Module.state_dict()``.
    """
    weights = model.state_dict() if hasattr(model, "state_dict") else model
    arrays = {f"model.{k}": v for k, v in weights.items()}
    if normalize is not None:
        arrays.update({f"normalize.{k}": v for k, v in normalize.state_dict().items()})
    arrays.update(extra or {})
    return save_arrays(path, arrays, {**dict(meta or {}), "spec": spec})


def group(arrays: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """The arrays saved under ``<name>.`` (e.g. ``model``, ``normalize``, ``opt``), prefix removed."""
    prefix = f"{name}."
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def load_model(path: str | os.PathLike) -> tuple[Sequential, Normalize | None, dict[str, Any], dict[str, np.ndarray]]:
    """Rebuild ``(model, normalize or None, meta, arrays)`` from a file written by :func:`save_model`."""
    from .data.transforms import Normalize

    arrays, meta = load_arrays(path)
    if "spec" not in meta:
        raise ValueError(f"{path}: no model spec inside; not a handprop model file")
    model = build_model(meta["spec"])
    model.load_state_dict(group(arrays, "model"))
    norm_state = group(arrays, "normalize")
    normalize = None
    if norm_state:
        normalize = Normalize()
        normalize.load_state_dict(norm_state)
    return model, normalize, meta, arrays
