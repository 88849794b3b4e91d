"""IDX reading and writing: round trips, byte-exact output, and every corruption a DatasetError."""
from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from handprop.data import DatasetError, read_idx, write_idx

from .conftest import idx_bytes

DTYPES = ["u1", "i1", "i2", "i4", "f4", "f8"]


def _array(dtype: str, shape=(3, 4, 5)) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) - 7).astype(dtype)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_read_matches_hand_built_file_native_and_writable(tmp_path, dtype, suffix):
    expected = _array(dtype)
    raw = idx_bytes(expected)
    path = tmp_path / f"a-idx3{suffix}"
    path.write_bytes(gzip.compress(raw) if suffix else raw)
    got = read_idx(path)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    assert got.flags.c_contiguous and got.flags.writeable
    assert read_idx(path, sha256=hashlib.sha256(raw).hexdigest()).shape == (3, 4, 5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_write_is_byte_exact_raw_and_gz(tmp_path, dtype):
    array = _array(dtype, (2, 3))
    write_idx(tmp_path / "a", array)
    write_idx(tmp_path / "a.gz", array)
    assert (tmp_path / "a").read_bytes() == idx_bytes(array)
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == idx_bytes(array)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a.gz"]  # no temp files left


def test_write_accepts_little_endian_and_non_contiguous(tmp_path):
    array = np.arange(24, dtype="<i4").reshape(4, 6)[:, ::2]
    write_idx(tmp_path / "b.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), array)


@pytest.mark.parametrize("array", [np.zeros(3, dtype=np.int64), np.zeros(3, dtype=bool),
                                   np.array(5, dtype=np.uint8)], ids=["int64", "bool", "0-d"])
def test_write_rejects_what_idx_cannot_hold_and_creates_nothing(tmp_path, array):
    with pytest.raises(DatasetError, match="cannot write"):
        write_idx(tmp_path / "c.gz", array)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "d.gz"
    write_idx(path, np.arange(4, dtype=np.uint8))
    before = path.read_bytes()

    def boom(self, data):
        raise OSError("disk full")
    monkeypatch.setattr(gzip.GzipFile, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        write_idx(path, np.arange(8, dtype=np.uint8))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.gz"]


# --- every corruption is a DatasetError naming the file and the problem ---------------------

GOOD = idx_bytes(np.arange(60000, dtype=np.uint32).astype(np.uint8))  # labels-like, 0x0801


def _bad(tmp_path, data: bytes, name: str = "train-labels-idx1-ubyte", gz: bool = False):
    path = tmp_path / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DatasetError) as info:
        read_idx(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_wrong_magic(tmp_path, gz):
    assert "wrong magic 0x01000801" in _bad(tmp_path, b"\x01" + GOOD[1:], gz=gz)


def test_gzip_bytes_in_a_raw_file_get_a_hint(tmp_path):
    assert "looks gzip-compressed" in _bad(tmp_path, gzip.compress(GOOD))


@pytest.mark.parametrize("code", [0x00, 0x07, 0x0A, 0x0F, 0xFF])
def test_wrong_dtype_code(tmp_path, code):
    assert f"wrong dtype code 0x{code:02X}" in _bad(tmp_path, GOOD[:2] + bytes([code]) + GOOD[3:])


def test_zero_dimensions(tmp_path):
    assert "0 dimensions" in _bad(tmp_path, b"\0\0\x08\0")


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cut", [0, 3, 5, 7])
def test_truncated_header(tmp_path, cut, gz):
    assert "truncated header" in _bad(tmp_path, GOOD[:cut], gz=gz)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload_message(tmp_path, gz):
    message = _bad(tmp_path, GOOD[:-10], gz=gz)
    assert message.endswith("truncated payload: header declares 60000 items (60000 bytes), file has 59990")


def test_truncated_payload_of_wide_dtype_counts_bytes(tmp_path):
    data = idx_bytes(np.zeros((2, 3), dtype=">f8"))[:-1]
    assert "header declares 6 items (48 bytes), file has 47" in _bad(tmp_path, data)


@pytest.mark.parametrize("gz", [False, True])
def test_trailing_bytes(tmp_path, gz):
    assert "trailing bytes: header declares 60000 items (60000 bytes)" in _bad(tmp_path, GOOD + b"\0", gz=gz)


def test_trailing_gzip_member(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(GOOD) + gzip.compress(b"\0"))
    with pytest.raises(DatasetError, match="trailing bytes"):
        read_idx(path)


def test_huge_declared_size_in_small_gzip_is_refused_before_allocating(tmp_path):
    data = b"\0\0\x08\x03" + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1)
    assert "more than a" in _bad(tmp_path, data, gz=True)


def test_corrupted_gzip_stream_bad_crc(tmp_path):
    blob = bytearray(gzip.compress(GOOD))
    blob[-8] ^= 0xFF  # the CRC-32 in the trailer
    path = tmp_path / "e.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match=f"{path}: corrupted gzip stream"):
        read_idx(path)


@pytest.mark.parametrize("where", [10, 200, -20])
def test_corrupted_gzip_stream_bad_deflate_or_truncated(tmp_path, where):
    blob = bytearray(gzip.compress(GOOD))
    if where == -20:
        blob = blob[:where]  # stream ends before its end-of-stream marker
    else:
        blob[where:where + 8] = b"\xff" * 8
    path = tmp_path / "f.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match=f"{path}: "):
        read_idx(path)


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "g.gz"
    path.write_bytes(GOOD)
    with pytest.raises(DatasetError, match="corrupted gzip stream"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="cannot open"):
        read_idx(tmp_path / "nope.gz")


def test_unreadable_file(tmp_path, deny):
    path = tmp_path / "locked.gz"
    path.write_bytes(gzip.compress(GOOD))
    deny(path)
    with pytest.raises(DatasetError, match=f"{path}: cannot open: Permission denied"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_io_error_mid_file_is_unreadable_not_corrupted(tmp_path, monkeypatch, gz):
    """A failing disk is "cannot read", not a corrupted file (and never a bare OSError)."""
    import errno
    import io

    import handprop.data.idx as idx
    path = tmp_path / ("j.gz" if gz else "j")
    path.write_bytes(gzip.compress(GOOD) if gz else GOOD)

    class FailingDisk(io.FileIO):
        def read(self, *args):
            raise OSError(errno.EIO, "Input/output error")

        readinto = read

    monkeypatch.setattr(idx, "open", lambda p, mode: FailingDisk(p, "r"), raising=False)
    with pytest.raises(DatasetError, match=f"{path}: cannot read: Input/output error"):
        read_idx(path)


def test_checksum_mismatch(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(GOOD)
    with pytest.raises(DatasetError, match=f"{path}: SHA-256 mismatch"):
        read_idx(path, sha256="0" * 64)


def test_never_reads_past_the_declared_payload(tmp_path, monkeypatch):
    """The payload is read into the array; at most one byte more (the end-of-file probe)."""
    path = tmp_path / "i"
    path.write_bytes(GOOD)
    import handprop.data.idx as idx
    asked = []
    real = idx._read_into
    monkeypatch.setattr(idx, "_read_into", lambda s, v: asked.append(len(v)) or real(s, v))
    read_idx(path)
    assert sum(asked) == len(GOOD)


# --- properties -------------------------------------------------------------------------------

_settings = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read_or_dataset_error(path):
    try:
        return read_idx(path)
    except DatasetError:
        return None


@_settings
@given(data=st.binary(max_size=200), gz_name=st.booleans())
def test_random_bytes_give_an_array_or_dataset_error(tmp_path, data, gz_name):
    path = tmp_path / ("r.gz" if gz_name else "r")
    path.write_bytes(data)
    _read_or_dataset_error(path)


@_settings
@given(code=st.sampled_from([8, 9, 11, 12, 13, 14]), dims=st.lists(st.integers(0, 2**32 - 1), max_size=4),
       payload=st.binary(max_size=64), gz=st.booleans())
def test_random_headers_give_an_array_or_dataset_error(tmp_path, code, dims, payload, gz):
    data = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload
    path = tmp_path / ("h.gz" if gz else "h")
    path.write_bytes(gzip.compress(data) if gz else data)
    got = _read_or_dataset_error(path)
    if got is not None:
        assert got.shape == tuple(dims) and got.nbytes == len(payload)


@_settings
@given(array=hnp.arrays(st.sampled_from(DTYPES),
                       hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)),
       gz=st.booleans())
def test_round_trip(tmp_path, array, gz):
    path = tmp_path / ("rt.gz" if gz else "rt")
    write_idx(path, array)
    np.testing.assert_array_equal(read_idx(path), array)


_VALID = idx_bytes(np.arange(120, dtype=np.int16).reshape(4, 5, 6))


@_settings
@given(cut=st.integers(0, len(_VALID) - 1), gz=st.booleans())
def test_any_truncation_is_a_dataset_error(tmp_path, cut, gz):
    blob = gzip.compress(_VALID) if gz else _VALID
    cut = min(cut, len(blob) - 1)
    path = tmp_path / ("t.gz" if gz else "t")
    path.write_bytes(blob[:cut])
    with pytest.raises(DatasetError):
        read_idx(path)


@_settings
@given(pos=st.integers(0, 10**6), value=st.integers(0, 255), gz=st.booleans())
def test_any_byte_flip_gives_an_array_or_dataset_error(tmp_path, pos, value, gz):
    blob = bytearray(gzip.compress(_VALID) if gz else _VALID)
    blob[pos % len(blob)] = value
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(bytes(blob))
    _read_or_dataset_error(path)
