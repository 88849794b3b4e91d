"""Crafting bad .npz files byte by byte: zip members, .npy headers, zip directories, metadata.

These helpers write what an attacker or a broken disk would, so they use NumPy's .npy writer
directly (object arrays pickled included); handprop's own writers refuse such files.
"""
from __future__ import annotations

import contextlib
import io
import json
import resource
import struct
import warnings
import zipfile
import zlib
from typing import Any, Iterator

import numpy as np


def members(data: bytes) -> dict[str, bytes]:
    """The raw .npy bytes of each member of a .npz, by member name (``x.npy``)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def pack(parts: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A .npz (zip) of these members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, payload in parts.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def with_duplicate(data: bytes, name: str, payload: bytes) -> bytes:
    """The zip with a second member called ``name`` appended (a later one would silently win)."""
    buf = io.BytesIO(data)
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "a") as zf:
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        zf.writestr(name, payload)
    return buf.getvalue()


def npy(array: Any) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=True)
    return buf.getvalue()


def array_of(payload: bytes) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(payload), allow_pickle=True)


def npy_claiming(array: np.ndarray, shape: tuple[int, ...]) -> bytes:
    """A .npy whose header declares ``shape`` but which holds ``array``'s bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(array.dtype),
                                               "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue() + np.ascontiguousarray(array).tobytes()


def meta_of(parts: dict[str, bytes]) -> dict:
    return json.loads(str(array_of(parts["__meta__.npy"])))


def with_meta(parts: dict[str, bytes], meta: Any) -> dict[str, bytes]:
    return {**parts, "__meta__.npy": npy(np.array(json.dumps(meta)))}


def claim_uncompressed_size(data: bytes, size: int) -> bytes:
    """The zip with every member's recorded uncompressed size set to ``size`` (a zip bomb's lie)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):  # central, local headers
        start = out.find(signature)
        while start != -1:
            out[start + offset:start + offset + 4] = struct.pack("<I", size)
            start = out.find(signature, start + 4)
    return bytes(out)


def overlapping_members(inner: bytes, copies: int) -> bytes:
    """A stored zip of ``copies`` members that overlap (Fifield's zip bomb, uncompressed): each
    member's data is the next member's local header and data, the last one's is ``inner``; the
    members together claim about ``copies`` times the file's size."""
    names = [f"m{k}.npy".encode() for k in range(copies)]
    blobs = [inner]
    for name in reversed(names[1:]):
        blobs.insert(0, _local_header(name, blobs[0]) + blobs[0])
    offsets = [sum(30 + len(n) for n in names[:k]) for k in range(copies)]
    body = _local_header(names[0], blobs[0]) + blobs[0]
    directory = b"".join(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, zlib.crc32(blob),
                                     len(blob), len(blob), len(name), 0, 0, 0, 0, 0, offset) + name
                         for name, blob, offset in zip(names, blobs, offsets))
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, copies, copies, len(directory), len(body), 0)
    return body + directory + end


def _local_header(name: bytes, payload: bytes) -> bytes:
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, zlib.crc32(payload), len(payload),
                       len(payload), len(name), 0) + name


@contextlib.contextmanager
def address_space_limit(extra_bytes: int = 1 << 30) -> Iterator[None]:
    """Inside the block this process may map only ``extra_bytes`` more: an attempt to allocate
    what a crafted file describes becomes a MemoryError instead of an out-of-memory machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        vm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    limit = vm_kb * 1024 + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
