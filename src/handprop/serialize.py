"""Saving arrays safely: atomic writes and ``.npz`` weights that never need pickle."""
from __future__ import annotations

import contextlib
import json
import math
import os
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from .errors import UsageError

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
    # no NaN or infinity: JSON has no literal for them, and load_arrays refuses them
    payload[_META_KEY] = np.array(json.dumps(dict(meta or {}), allow_nan=False))
    with atomic_write(path) as f:
        np.savez(f, **payload)
    return path


class ModelFileError(UsageError):
    """A weights file, model file or checkpoint that handprop will not use. The message starts
    with the file's path and says what is wrong, in one line."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(f"{path}: {_clip(problem, 400)}")
        self.path = Path(path)


#: Deflate expands at most about 1032:1; a member claiming more than that is a zip bomb.
_DEFLATE_MAX_RATIO = 1032
#: NumPy's own limit on an .npy header (a dict literal naming dtype, order and shape).
_NPY_MAX_HEADER = 10_000
#: What an array in a handprop file may hold: booleans, numbers, and the text of the metadata.
#: Never objects (pickled code) and never records.
_ARRAY_KINDS = "biufcU"
#: How a corrupt container shows up in zipfile, zlib and NumPy's .npy reader (whose header
#: parser falls back to ``tokenize`` on a garbled header).
_UNREADABLE = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, NotImplementedError,
               tokenize.TokenError, SyntaxError, RecursionError)


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read an ``.npz`` written by :func:`save_arrays`: (arrays, meta). Never unpickles.

    The file is untrusted: every member's .npy header (dtype, shape) must agree with the
    member's size, and the sizes with the file's, before an array is allocated, so a file
    cannot make handprop allocate more than it holds (no zip bombs, no giant shapes over
    tiny data). The metadata must be a UTF-8 JSON object with finite numbers. Anything else
    is a :class:`ModelFileError` naming the file; a missing file is FileNotFoundError.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            arrays = _read_members(path, zf, path.stat().st_size)
    except (FileNotFoundError, ModelFileError):
        raise
    except _UNREADABLE as e:
        raise ModelFileError(path, f"not a readable .npz weights file ({_clip(str(e))})") from None
    return arrays, _read_meta(path, arrays.pop(_META_KEY, None))


def _read_members(path: Path, zf: zipfile.ZipFile, file_size: int) -> dict[str, np.ndarray]:
    infos = zf.infolist()
    if sum(info.compress_size for info in infos) > file_size:
        raise ModelFileError(path, "its zip members overlap or claim more bytes than the file has")
    arrays: dict[str, np.ndarray] = {}
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if not info.filename.endswith(".npy") or not name:
            raise ModelFileError(path, f"zip member {_clip(repr(info.filename))} is not a .npy array")
        if name in arrays:
            raise ModelFileError(path, f"array {_clip(repr(name))} appears twice")
        arrays[name] = _read_member(path, zf, info, name)
    return arrays


def _read_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> np.ndarray:
    """One member's array, after checking that its header describes exactly the bytes it holds."""
    what = f"array {_clip(repr(name))}"
    if info.flag_bits & 0x1:
        raise ModelFileError(path, f"{what} is encrypted")
    ratio = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: _DEFLATE_MAX_RATIO}.get(info.compress_type)
    if ratio is None:
        raise ModelFileError(path, f"{what} uses zip compression method {info.compress_type}; "
                                   "expected stored or deflated")
    if info.file_size > ratio * info.compress_size:
        raise ModelFileError(path, f"{what} claims {info.file_size:,} bytes from {info.compress_size:,} "
                                   "compressed ones (a zip bomb)")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ModelFileError(path, f"{what} has .npy format version {version}; expected 1.0 or 2.0")
        shape, _, dtype = read_header(f, max_header_size=_NPY_MAX_HEADER)
        header_size = f.tell()
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ModelFileError(path, f"{what} has dtype {_clip(str(dtype))}; handprop files hold numbers only")
    declared = math.prod(shape) * dtype.itemsize
    if header_size + declared != info.file_size:
        raise ModelFileError(path, f"{what} declares shape {_clip(str(shape))} of {dtype} ({declared:,} bytes) "
                                   f"but holds {info.file_size - header_size:,} bytes")
    with zf.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False, max_header_size=_NPY_MAX_HEADER)


def _read_meta(path: Path, raw: np.ndarray | None) -> dict[str, Any]:
    """The JSON object saved as ``__meta__``: valid Unicode, finite numbers, not absurdly nested."""
    if raw is None:
        return {}
    if raw.dtype.kind != "U" or raw.shape != ():
        raise ModelFileError(path, f"its metadata is a {raw.dtype} array of shape {raw.shape}, not JSON text")
    codes = np.frombuffer(raw.tobytes(), np.dtype(np.uint32).newbyteorder(raw.dtype.byteorder))
    if ((codes > 0x10FFFF) | ((codes >= 0xD800) & (codes < 0xE000))).any():  # UTF-32 may hold anything
        raise ModelFileError(path, "its metadata is not valid Unicode (a surrogate or a code point beyond U+10FFFF)")
    try:
        meta = json.loads(str(raw[()]), parse_constant=_not_a_number, parse_float=_finite_float)
    except RecursionError:
        raise ModelFileError(path, "its metadata nests too deeply") from None
    except ValueError as e:  # invalid JSON, NaN or infinity
        raise ModelFileError(path, f"its metadata is not valid JSON ({_clip(str(e))})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(path, f"its metadata is a JSON {type(meta).__name__}, not an object")
    return meta


def _not_a_number(literal: str) -> float:
    raise ValueError(f"{literal} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{_clip(literal)} overflows a float")
    return value


def _clip(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters: file-supplied names and errors stay short."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


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

    ``meta`` holds the keys :mod:`handprop.model_file` knows (``kind`` defaults to ``"model"``).

    ``model`` is a Module or a state dict from ``Module.state_dict()``.
    """
    arrays = {**model_arrays(model, normalize), **(extra or {})}
    return save_arrays(path, arrays, {"kind": "model", **dict(meta or {}), "spec": spec})


def model_arrays(model: Module | Mapping[str, np.ndarray], normalize: Normalize | None = None
                 ) -> dict[str, np.ndarray]:
    """The arrays of a model file: the state dict as ``model.<name>``, the normalisation as
    ``normalize.mean``/``normalize.std`` (``model``: a Module or its state dict)."""
    weights = model.state_dict() if hasattr(model, "state_dict") else model
    arrays = {f"model.{k}": v for k, v in weights.items()}
    if normalize is not None:
        arrays.update({f"normalize.{k}": v for k, v in normalize.state_dict().items()})
    return arrays


def group(arrays: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """The arrays saved under ``<name>.`` (e.g. ``model``, ``normalize``, ``opt``), prefix removed."""
    prefix = f"{name}."
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def load_model(path: str | os.PathLike) -> tuple[Sequential, Normalize | None, dict[str, Any], dict[str, np.ndarray]]:
    """Rebuild ``(model, normalize or None, meta, arrays)`` from a file written by :func:`save_model`
    (a model file or a checkpoint), after checking the file against its schema
    (:mod:`handprop.model_file`): an invalid file is a :class:`ModelFileError`."""
    from .model_file import read_model_file

    file = read_model_file(path)
    return file.build_model(), file.normalize, file.meta, file.arrays


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
