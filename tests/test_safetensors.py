"""safetensors from the spec: exact round trips, the package's bytes, and untrusted files refused."""
from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handprop import safetensors as hst
from handprop.safetensors import SafetensorsError, load_file, read_metadata, save_file

DTYPES = list(hst.DTYPES.values())
SHAPES = [(), (0,), (3,), (2, 0, 4), (2, 3, 4)]


def _array(dtype: np.dtype, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.asarray(_values(dtype, shape, seed))  # (0-d draws and comparisons give scalars)


def _values(dtype: np.dtype, shape: tuple[int, ...], seed: int):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * 100
    if dtype.kind == "c":
        return (values + 1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind == "b":
        return values > 0
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return values.astype(dtype)


def _assert_same(loaded: dict, arrays: dict) -> None:
    assert set(loaded) == set(arrays)
    for name, a in arrays.items():
        assert loaded[name].dtype == a.dtype.newbyteorder("=") and loaded[name].shape == a.shape, name
        np.testing.assert_array_equal(loaded[name], a)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_and_shape_round_trips_exactly(tmp_path, dtype):
    arrays = {f"t{i}": _array(dtype, shape, i) for i, shape in enumerate(SHAPES)}
    path = save_file(arrays, tmp_path / "x.safetensors", {"note": "héllo", "k": ""})
    loaded, metadata = load_file(path)
    _assert_same(loaded, arrays)
    assert metadata == {"note": "héllo", "k": ""}
    assert all(a.flags.writeable and a.flags.owndata for a in loaded.values()), "owned, writable copies"


def test_non_contiguous_and_big_endian_arrays_are_written_as_c_order_little_endian(tmp_path):
    arrays = {"transposed": np.arange(12, dtype=np.float32).reshape(3, 4).T,
              "strided": np.arange(20.0)[::3], "big": np.arange(6, dtype=">i4").reshape(2, 3),
              "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3))}
    path = save_file(arrays, tmp_path / "x.safetensors")
    _assert_same(load_file(path)[0], arrays)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    big = json.loads(raw[8:8 + n])["big"]
    start = 8 + n + big["data_offsets"][0]
    assert raw[start:start + 8] == bytes([0, 0, 0, 0, 1, 0, 0, 0]), "little-endian 0, 1"


def test_layout_follows_the_spec(tmp_path):
    path = save_file({"b": np.zeros(3, np.uint8), "a": np.ones(2, np.float64), "c": np.ones(1, np.float64)},
                     tmp_path / "x.safetensors", {"z": "1", "a": "2"})
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert (8 + n) % 8 == 0 and raw[8:8 + n].rstrip(b" ").endswith(b"}"), "header padded with spaces to 8"
    header = json.loads(raw[8:8 + n])
    assert list(header) == ["__metadata__", "a", "c", "b"], "metadata first, then widest dtype, then name"
    assert header["a"] == {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}
    assert header["b"]["data_offsets"] == [24, 27] and len(raw) == 8 + n + 27
    assert read_metadata(path) == {"a": "2", "z": "1"}


def test_an_empty_file_holds_nothing(tmp_path):
    path = save_file({}, tmp_path / "empty.safetensors")
    assert path.read_bytes() == b"\x08" + bytes(7) + b"{}      "
    assert load_file(path) == ({}, {})


# -- the safetensors package, both ways ----------------------------------------------------------------

def _package_arrays() -> dict[str, np.ndarray]:
    return {f"{dtype}_{i}": _array(dtype, shape, i) for dtype in DTYPES for i, shape in enumerate(SHAPES)}


def test_files_written_by_the_package_load_here(tmp_path):
    stn = pytest.importorskip("safetensors.numpy")
    arrays = _package_arrays()
    stn.save_file(arrays, str(tmp_path / "pkg.safetensors"), metadata={"format": "np", "x": "y"})
    loaded, metadata = load_file(tmp_path / "pkg.safetensors")
    _assert_same(loaded, arrays)
    assert metadata == {"format": "np", "x": "y"}


def test_files_written_here_load_in_the_package_and_match_its_bytes(tmp_path):
    stn = pytest.importorskip("safetensors.numpy")
    arrays = _package_arrays()
    ours = save_file(arrays, tmp_path / "ours.safetensors", {"format": "np"})
    _assert_same(stn.load_file(str(ours)), arrays)
    stn.save_file(arrays, str(tmp_path / "pkg.safetensors"), metadata={"format": "np"})  # all contiguous
    assert ours.read_bytes() == (tmp_path / "pkg.safetensors").read_bytes()


def test_non_contiguous_arrays_written_here_load_correctly_in_the_package(tmp_path):
    stn = pytest.importorskip("safetensors.numpy")
    arrays = {"t": np.arange(12, dtype=np.float32).reshape(3, 4).T, "s": np.arange(10.0)[::2]}
    _assert_same(stn.load_file(str(save_file(arrays, tmp_path / "x.safetensors"))), arrays)


# -- refusing what cannot be written -----------------------------------------------------------------------

@pytest.mark.parametrize("arrays,metadata,message", [
    ({"o": np.array([{}, None], dtype=object)}, None, r"tensor 'o' has dtype object; safetensors stores"),
    ({"s": np.array(["a"])}, None, r"tensor 's' has dtype <U1"),
    ({"d": np.array(["2020-01-01"], dtype="datetime64[D]")}, None, r"tensor 'd' has dtype datetime64"),
    ({"__metadata__": np.zeros(1)}, None, r"tensor name must be a str other than '__metadata__'"),
    ({1: np.zeros(1)}, None, r"tensor name must be a str"),
    ({"x": np.zeros(1)}, {"k": 1}, r"metadata must map str to str; 'k' does not"),
])
def test_what_safetensors_cannot_hold_is_refused_and_nothing_written(tmp_path, arrays, metadata, message):
    with pytest.raises(SafetensorsError, match=message) as info:
        save_file(arrays, tmp_path / "x.safetensors", metadata)
    assert str(tmp_path / "x.safetensors") in str(info.value)
    assert list(tmp_path.iterdir()) == []


# -- untrusted files --------------------------------------------------------------------------------------------

def _file(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(text) if length is None else length).to_bytes(8, "little") + text + data


def _entry(dtype="F32", shape=(2,), offsets=(0, 8)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


CRAFTED = {
    "shorter than the length field": (b"\x08\x00\x00", "3 bytes, shorter than the 8-byte header length"),
    "header length past the end": (_file({"a": _entry()}, bytes(8), length=10**6), "header length 1000000 exceeds the"),
    "header length 2**64-1": (b"\xff" * 8 + b"{}", "header length 18446744073709551615 exceeds"),
    "not UTF-8": (_file(b'{"\xff": 1}'), "header is not UTF-8 JSON"),
    "not JSON": (_file(b"{not json}"), "header is not UTF-8 JSON"),
    "a JSON list": (_file(b"[]"), "header is not a JSON object"),
    "leading space": (_file(b" {}"), "header is not a JSON object"),
    "nested 100000 deep": (_file(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), "header is not UTF-8 JSON"),
    "a NaN": (_file(b'{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 0]}}'), "NaN is not JSON"),
    "a key twice": (_file(b'{"a": 1, "a": 2}'), "key 'a' appears twice"),
    "entry not an object": (_file({"a": [1]}), "tensor 'a' must have exactly dtype, shape and data_offsets"),
    "missing offsets": (_file({"a": {"dtype": "F32", "shape": [0]}}), "must have exactly dtype, shape and data_offsets"),
    "an extra field": (_file({"a": {**_entry(), "x": 1}}, bytes(8)), "must have exactly"),
    "unknown dtype": (_file({"a": _entry(dtype="F128")}, bytes(8)), "tensor 'a' has unknown dtype 'F128'"),
    "dtype not a string": (_file({"a": _entry(dtype=["F32"])}, bytes(8)), "unknown dtype \\['F32'\\]"),
    "BF16": (_file({"a": _entry(dtype="BF16", offsets=(0, 4))}, bytes(4)), "dtype BF16, which NumPy cannot represent"),
    "negative dimension": (_file({"a": _entry(shape=(-2,))}, bytes(8)), "shape \\[-2\\], not a list of at most 32"),
    "float dimension": (_file({"a": _entry(shape=(2.0,))}, bytes(8)), "not a list of at most 32 non-negative"),
    "bool dimension": (_file({"a": _entry(shape=(True, 2))}, bytes(8)), "not a list of at most 32 non-negative"),
    "100000 dimensions": (_file({"a": _entry(shape=(1,) * 100_000, offsets=(0, 4))}, bytes(4)), "at most 32"),
    "shape not a list": (_file({"a": {**_entry(), "shape": "2"}}, bytes(8)), "shape '2', not a list"),
    "offsets reversed": (_file({"a": _entry(offsets=(8, 0))}, bytes(8)), "data_offsets \\[8, 0\\], not \\[begin, end\\]"),
    "three offsets": (_file({"a": _entry(offsets=(0, 4, 8))}, bytes(8)), "not \\[begin, end\\]"),
    "negative offset": (_file({"a": _entry(offsets=(-8, 0))}, bytes(8)), "not \\[begin, end\\]"),
    "dtype/shape vs bytes": (_file({"a": _entry(dtype="F64")}, bytes(8)), "is F64 \\[2\\], 16 bytes, but its offsets span 8"),
    "offsets wider than the tensor": (_file({"a": _entry(shape=(1,))}, bytes(8)), "4 bytes, but its offsets span 8"),
    "huge declared shape": (_file({"a": _entry(shape=(2**30, 2**30))}, bytes(8)), "but its offsets span 8"),
    "shape beyond NumPy": (_file({"a": _entry(shape=(2**40, 2**40))}, bytes(8)), "too large for NumPy"),
    "huge shape with a zero": (_file({"a": _entry(shape=(0, 2**62, 2**62), offsets=(0, 0))}), "too large for NumPy"),
    "offsets past the data": (_file({"a": _entry(offsets=(8, 16))}, bytes(8)), "starts at byte 8 of the data, expected 0"),
    "overlap": (_file({"a": _entry(), "b": _entry(offsets=(4, 12))}, bytes(12)), "tensor 'b' starts at byte 4.*overlap"),
    "same bytes twice": (_file({"a": _entry(), "b": _entry()}, bytes(8)), "starts at byte 0 of the data, expected 8"),
    "a gap": (_file({"a": _entry(), "b": _entry(offsets=(12, 20))}, bytes(20)), "expected 8 \\(gap between tensors\\)"),
    "trailing bytes": (_file({"a": _entry()}, bytes(9)), "the tensors cover 8 bytes but the data section has 9"),
    "data missing": (_file({"a": _entry()}, bytes(4)), "the tensors cover 8 bytes but the data section has 4"),
    "metadata not a map": (_file({"__metadata__": ["a"]}), "__metadata__ must map strings to strings"),
    "metadata value not a string": (_file({"__metadata__": {"a": 1}}), "__metadata__ must map strings to strings"),
    "BOOL byte 2": (_file({"a": _entry(dtype="BOOL", offsets=(0, 2))}, b"\x01\x02"), "BOOL but holds bytes other than 0 and 1"),
}


@pytest.mark.parametrize("raw,message", CRAFTED.values(), ids=CRAFTED.keys())
def test_crafted_files_are_one_named_value_error(tmp_path, raw, message):
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(raw)
    with pytest.raises(SafetensorsError, match=message) as info:
        load_file(path)
    text = str(info.value)
    assert isinstance(info.value, ValueError)
    assert text.startswith(f"{path}: ") and "\n" not in text and len(text) < 400, text


def test_the_header_bound_is_the_packages_100_mb(tmp_path, monkeypatch):
    assert hst.MAX_HEADER == 100_000_000
    monkeypatch.setattr(hst, "MAX_HEADER", 16)
    path = tmp_path / "x.safetensors"
    path.write_bytes(_file({"a": _entry()}, bytes(8)))
    with pytest.raises(SafetensorsError, match="header length .* exceeds 16 bytes"):
        load_file(path)


def test_loading_allocates_no_more_than_the_data(tmp_path):
    """Arrays are read straight into their own buffers: no whole-file copy beside them."""
    arrays = {"w": np.ones((512, 512), np.float32), "b": np.ones(512, np.float32)}
    path = save_file(arrays, tmp_path / "x.safetensors")
    tracemalloc.start()
    try:
        load_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    data = sum(a.nbytes for a in arrays.values())
    assert data <= peak < data + 64 * 1024, (peak, data)


# -- fuzz: mutated valid files give SafetensorsError or a consistent result, never anything else --------------

_VALID = _file({"__metadata__": {"k": "v"}, "a": _entry(shape=(2, 2), offsets=(0, 16)),
                "b": _entry(dtype="I16", shape=(3,), offsets=(16, 22)), "c": _entry(dtype="BOOL", offsets=(22, 24)),
                "e": _entry(dtype="U8", shape=(0, 5), offsets=(24, 24))}, bytes(range(22)) + b"\x01\x00")
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2, 40) | st.integers(-2**70, 2**70)
                     | st.floats(allow_nan=False) | st.sampled_from(["F32", "BF16", "I64", "BOOL", ""]),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                     max_leaves=8)
_HEADER_LEN = int.from_bytes(_VALID[:8], "little")


@st.composite
def _mutated(draw) -> bytes:
    """A valid file with one kind of damage: header fields replaced, bytes flipped, or a cut."""
    kind = draw(st.sampled_from(["field", "number", "bytes", "cut"]))
    header = json.loads(_VALID[8:8 + _HEADER_LEN])
    if kind in ("field", "number"):
        for _ in range(draw(st.integers(1, 2))):
            entry = header[draw(st.sampled_from(sorted(header)))]
            key = draw(st.sampled_from(sorted(entry)))
            if kind == "field":
                entry[key] = draw(_JSON)
            elif isinstance(entry[key], list) and entry[key]:  # one shape or offset a little off
                entry[key][draw(st.integers(0, len(entry[key]) - 1))] += draw(st.integers(-9, 9))
    raw = bytearray(_file(header, _VALID[8 + _HEADER_LEN:]))
    if kind == "bytes":
        for _ in range(draw(st.integers(1, 3))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    if kind == "cut":
        cut = draw(st.integers(0, len(raw) + 8))
        raw = raw[:cut] + bytes(max(0, cut - len(raw)))
    return bytes(raw)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=_mutated())
def test_fuzzed_files_never_raise_anything_but_safetensors_error(tmp_path, raw):
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(raw)
    try:
        arrays, metadata = load_file(path)
    except SafetensorsError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
        return
    assert sum(a.nbytes for a in arrays.values()) <= len(raw)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
