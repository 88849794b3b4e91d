"""The IDX file format (LeCun's MNIST container): strict reading and atomic writing.

An IDX file is a 4-byte magic ``00 00 <dtype code> <ndim>``, ``ndim`` big-endian uint32
sizes, then the items, big-endian, row-major. Files ending in ``.gz`` are gzip streams.
The reader decompresses straight into the array it returns (one copy), never reads more
than the header declares (plus one byte to prove there is nothing after it), and turns
every defect into a :class:`DatasetError` naming the file and the problem.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..serialize import atomic_write
from .errors import DatasetError

# dtype code -> on-disk dtype (IDX is big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}
_CODE_NAMES = ", ".join(f"0x{code:02X} {dt.name}" for code, dt in IDX_DTYPES.items())
# Deflate cannot expand data more than ~1032:1, so a header declaring more than this many
# bytes per compressed byte is a truncated file; checked before allocating the array.
_MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20


def read_idx(path: str | os.PathLike, *, sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (raw, or gzip if the name ends in ``.gz``) into a native-endian array.

    ``sha256``, if given, is the expected hex digest of the *decompressed* file bytes
    (header included), so a re-compressed copy still verifies.
    Raises :class:`DatasetError` for a missing or unreadable file, wrong magic or dtype code,
    truncated header or payload, trailing bytes, a corrupted gzip stream or a checksum mismatch.
    """
    path = Path(path)
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    with raw:
        size = os.fstat(raw.fileno()).st_size
        try:
            if not path.name.endswith(".gz"):
                return _read_stream(raw, path, size, compressed=False, sha256=sha256)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _read_stream(stream, path, size, compressed=True, sha256=sha256)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise DatasetError(f"{path}: corrupted gzip stream: {exc}") from exc
        except OSError as exc:  # the disk, not the data: an I/O error while reading
            raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _read_stream(stream: BinaryIO, path: Path, size: int, *, compressed: bool,
                 sha256: str | None) -> np.ndarray:
    """Parse header and payload from an open stream; ``size`` is the file's size on disk."""
    magic = _read_bytes(stream, 4)
    if len(magic) < 4:
        raise DatasetError(f"{path}: truncated header: {len(magic)} bytes, an IDX header needs at least 4")
    if magic[:2] != b"\0\0":
        hint = " (the file looks gzip-compressed; name it .gz)" if magic[:2] == b"\x1f\x8b" else ""
        raise DatasetError(f"{path}: wrong magic 0x{magic.hex().upper()}: "
                           f"an IDX file starts with 00 00{hint}")
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        raise DatasetError(f"{path}: wrong dtype code 0x{code:02X}; IDX codes are {_CODE_NAMES}")
    if ndim == 0:
        raise DatasetError(f"{path}: header declares 0 dimensions")
    dims_bytes = _read_bytes(stream, 4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise DatasetError(f"{path}: truncated header: {ndim} dimensions need {4 * ndim} size bytes, "
                           f"file has {len(dims_bytes)}")
    shape = tuple(int(d) for d in np.frombuffer(dims_bytes, dtype=">u4"))
    dtype = IDX_DTYPES[code]
    items = int(np.prod(shape, dtype=object))
    nbytes = items * dtype.itemsize
    declared = f"header declares {items} items ({nbytes} bytes)"
    header_len = 4 + 4 * ndim
    if not compressed and size - header_len != nbytes:
        problem = "truncated payload" if size - header_len < nbytes else "trailing bytes"
        raise DatasetError(f"{path}: {problem}: {declared}, file has {size - header_len}")
    if compressed and nbytes > _MAX_DEFLATE_RATIO * size:
        raise DatasetError(f"{path}: truncated payload: {declared}, "
                           f"more than a {size}-byte gzip file can hold")

    try:
        array = np.empty(shape, dtype=dtype)
    except (ValueError, MemoryError):  # NumPy refuses shapes whose extent overflows, even when empty
        raise DatasetError(f"{path}: impossible shape {shape} in the header") from None
    got = _read_into(stream, memoryview(array.reshape(-1).view(np.uint8)))
    if got < nbytes:
        raise DatasetError(f"{path}: truncated payload: {declared}, file has {got}")
    if compressed and stream.read(1):  # also makes gzip check the stream's CRC and length
        raise DatasetError(f"{path}: trailing bytes: {declared}, file has more")
    if sha256 is not None:
        digest = hashlib.sha256(magic + dims_bytes)
        digest.update(array.reshape(-1).view(np.uint8))
        if digest.hexdigest() != sha256.lower():
            raise DatasetError(f"{path}: SHA-256 mismatch: decompressed bytes hash to "
                               f"{digest.hexdigest()}, expected {sha256.lower()}")
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def _read_bytes(stream: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; fewer only at end of file."""
    buf = bytearray(n)
    got = _read_into(stream, memoryview(buf))
    return bytes(buf[:got])


def _read_into(stream: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``stream`` in chunks; return the number of bytes read."""
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:got + _CHUNK])
        if not n:
            break
        got += n
    return got


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip if the name ends in ``.gz``), atomically.

    The bytes go to a temporary file in the same folder, which replaces ``path`` only once
    complete, so readers never see a partial file. Raises :class:`DatasetError` for a dtype
    IDX cannot hold (supported: uint8, int8, int16, int32, float32, float64) or a 0-d array.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODES.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise DatasetError(f"{path}: cannot write dtype {array.dtype} as IDX; supported: {_CODE_NAMES}")
    if not 1 <= array.ndim <= 255 or max(array.shape) >= 2**32:
        raise DatasetError(f"{path}: cannot write shape {array.shape} as IDX "
                           "(1 to 255 dimensions, each below 2**32)")
    data = np.ascontiguousarray(array, dtype=IDX_DTYPES[code])
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    with atomic_write(path) as f:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=f, mtime=0, compresslevel=6) as gz:
                gz.write(header)
                gz.write(data.reshape(-1).view(np.uint8))
        else:
            f.write(header)
            f.write(data.reshape(-1).view(np.uint8))
