"""The safetensors format, read and written with NumPy alone, from its specification.

A file is: 8 bytes, the header length N as a little-endian u64; N bytes of UTF-8 JSON mapping
each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional
``"__metadata__"`` map of strings to strings), padded with spaces; then the data section, every
tensor's raw little-endian C-order bytes at its offsets. Nothing in it can run code.

The reader treats the file as untrusted: every check below passes before any array is
allocated, and all arrays together take exactly the data section's bytes, so a crafted file
can cost no more memory than its own size. Every violation is one :class:`SafetensorsError`.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import numpy as np

from .errors import UsageError
from .serialize import atomic_write

#: The spec's dtype names NumPy represents exactly, in the package's order (it writes the tensors
#: of the last dtype first, and by name within a dtype).
DTYPES: dict[str, np.dtype] = {name: np.dtype(code) for name, code in [
    ("BOOL", "?"), ("U8", "u1"), ("I8", "i1"), ("I16", "<i2"), ("U16", "<u2"), ("F16", "<f2"),
    ("I32", "<i4"), ("U32", "<u4"), ("F32", "<f4"), ("C64", "<c8"), ("F64", "<f8"), ("I64", "<i8"),
    ("U64", "<u8")]}
#: Spec dtypes with no NumPy equivalent: refused by name rather than misread.
UNSUPPORTED = ("BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4")
#: The package's own bound on the header (100 MB).
MAX_HEADER = 100_000_000
METADATA_KEY = "__metadata__"
_MAX_DIMS = 32  # NumPy 1.x's limit (2.x allows 64); no real tensor comes near it
_RANK = {name: i for i, name in enumerate(DTYPES)}
_NAMES = {dtype.newbyteorder("<"): name for name, dtype in DTYPES.items()}


class SafetensorsError(UsageError):
    """A ``.safetensors`` file is malformed (or an array cannot be stored in one); the message
    names the file and the problem."""


def save_file(arrays: Mapping[str, np.ndarray], path: str | os.PathLike,
              metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``arrays`` (and a ``str -> str`` ``metadata`` map) to ``path``, atomically.

    The layout is the ``safetensors`` package's, byte for byte: tensors sorted by dtype (widest
    first) then name, a compact JSON header padded with spaces to a multiple of 8 bytes.
    """
    path = Path(path)
    tensors = {name: _storable(path, name, a) for name, a in arrays.items()}
    order = sorted(tensors, key=lambda name: (-_RANK[_NAMES[tensors[name].dtype]], name))
    header: dict[str, Any] = {}
    if metadata:
        bad = [k for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))]
        if bad:
            raise SafetensorsError(f"{path}: metadata must map str to str; {bad[0]!r} does not")
        header[METADATA_KEY] = dict(sorted(metadata.items()))
    offset = 0
    for name in order:
        a = tensors[name]
        header[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    with atomic_write(path) as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for name in order:
            f.write(tensors[name].data)
    return path


def _storable(path: Path, name: Any, array: np.ndarray) -> np.ndarray:
    """``array`` as C-contiguous little-endian of a spec dtype (a copy only when needed)."""
    if not isinstance(name, str) or name == METADATA_KEY:
        raise SafetensorsError(f"{path}: tensor name must be a str other than {METADATA_KEY!r}, got {name!r}")
    a = np.asarray(array)
    little = a.dtype.newbyteorder("<") if a.dtype.byteorder != "|" else a.dtype
    if little not in _NAMES:
        raise SafetensorsError(f"{path}: tensor {name!r} has dtype {a.dtype}; safetensors stores "
                               f"{', '.join(str(d) for d in DTYPES.values())}")
    return a.astype(little, order="C", copy=False)  # (not ascontiguousarray: it makes 0-d arrays 1-d)


def load_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read ``path``: (arrays in file order, owned and writable; the ``__metadata__`` map or ``{}``)."""
    path = Path(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        header_len, entries, metadata = _read_header(path, f, size)
        arrays = {}
        for name, (dtype, shape, begin, end) in entries.items():
            array = np.empty(shape, dtype)
            f.seek(8 + header_len + begin)
            if end > begin and f.readinto(array.reshape(-1).view(np.uint8)) != end - begin:
                raise SafetensorsError(f"{path}: file ended inside tensor {_clip(name)} (was it truncated while read?)")
            if dtype == np.bool_ and np.any(array.view(np.uint8) > 1):
                raise SafetensorsError(f"{path}: tensor {_clip(name)} is BOOL but holds bytes other than 0 and 1")
            arrays[name] = array
    return arrays, metadata


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Only the ``__metadata__`` map of ``path`` (the header is checked, the data not read)."""
    path = Path(path)
    with open(path, "rb") as f:
        return _read_header(path, f, os.fstat(f.fileno()).st_size)[2]


def _read_header(path: Path, f: BinaryIO, size: int) -> tuple[int, dict[str, tuple], dict[str, str]]:
    """(header length, name -> (dtype, shape, begin, end) by offset, metadata), every entry checked."""
    def bad(problem: str) -> SafetensorsError:
        return SafetensorsError(f"{path}: not a valid .safetensors file: {problem}")

    if size < 8:
        raise bad(f"{size} bytes, shorter than the 8-byte header length")
    header_len = int.from_bytes(f.read(8), "little")
    if header_len > min(MAX_HEADER, size - 8):
        raise bad(f"header length {header_len} exceeds the {size - 8} bytes after it"
                  if header_len > size - 8 else f"header length {header_len} exceeds {MAX_HEADER} bytes")
    raw = f.read(header_len)
    if len(raw) != header_len:
        raise bad("file ended inside the header")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise bad(f"header is not UTF-8 JSON ({e})") from None
    if not raw.startswith(b"{") or not isinstance(header, dict):
        raise bad("header is not a JSON object")
    metadata = header.pop(METADATA_KEY, {})
    if not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise bad(f"{METADATA_KEY} must map strings to strings")
    entries = {name: _entry(name, info, bad) for name, info in header.items()}
    entries = dict(sorted(entries.items(), key=lambda item: item[1][2:]))
    data_len, end = size - 8 - header_len, 0
    for name, (_, _, begin, stop) in entries.items():
        if begin != end:
            raise bad(f"tensor {_clip(name)} starts at byte {begin} of the data, expected {end} "
                      f"({'overlap' if begin < end else 'gap'} between tensors)")
        end = stop
    if end != data_len:
        raise bad(f"the tensors cover {end} bytes but the data section has {data_len}")
    return header_len, entries, metadata


def _entry(name: str, info: Any, bad) -> tuple[np.dtype, tuple[int, ...], int, int]:
    """One header entry checked: (dtype, shape, begin, end) with end - begin == its byte count."""
    name = _clip(name)
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise bad(f"tensor {name} must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype in UNSUPPORTED:
        raise bad(f"tensor {name} has dtype {dtype}, which NumPy cannot represent; "
                  "convert it (e.g. tensor.float() in PyTorch) before saving")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise bad(f"tensor {name} has unknown dtype {_clip(dtype)}")
    if not (isinstance(shape, list) and len(shape) <= _MAX_DIMS and all(_is_count(n) for n in shape)):
        raise bad(f"tensor {name} has shape {_clip(shape)}, not a list of at most {_MAX_DIMS} non-negative integers")
    if math.prod(n for n in shape if n) > np.iinfo(np.intp).max:
        raise bad(f"tensor {name} has shape {shape}, too large for NumPy")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)
            and offsets[0] <= offsets[1]):
        raise bad(f"tensor {name} has data_offsets {_clip(offsets)}, not [begin, end] with 0 <= begin <= end")
    nbytes = math.prod(shape) * DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise bad(f"tensor {name} is {dtype} {shape}, {nbytes} bytes, but its offsets span "
                  f"{offsets[1] - offsets[0]}")
    return DTYPES[dtype], tuple(shape), offsets[0], offsets[1]


def _clip(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut short: a crafted header must not make a megabyte error line."""
    text = repr(value[:limit] if isinstance(value, (str, list)) else value)
    return text if len(text) <= limit else text[:limit] + "..."


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing repeated keys (two entries for one tensor would hide one)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        names = [k for k, _ in pairs]
        raise ValueError(f"key {next(k for k in names if names.count(k) > 1)!r} appears twice")
    return obj


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
