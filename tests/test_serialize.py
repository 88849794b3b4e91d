"""serialize: .npz weights without pickle, and atomic writes that never leave a torn file."""
from __future__ import annotations

import numpy as np
import pytest

from handprop import nn
from handprop.serialize import ModelFileError, atomic_write, load_arrays, save_arrays


def test_save_load_round_trip_with_meta(tmp_path):
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1.5, -2.0]),
              "labels": np.array([3, 1, 4], dtype=np.int64), "scalar": np.array(7.0)}
    meta = {"epochs": 3, "arch": [784, 50, 10], "name": "mlp", "lr": 0.5, "nested": {"ok": True}}
    path = save_arrays(tmp_path / "weights.npz", arrays, meta)
    assert path == tmp_path / "weights.npz" and path.is_file()
    loaded, loaded_meta = load_arrays(path)
    assert loaded_meta == meta
    assert set(loaded) == set(arrays)
    for name, a in arrays.items():
        assert loaded[name].dtype == a.dtype and loaded[name].shape == a.shape
        np.testing.assert_array_equal(loaded[name], a)


def test_meta_defaults_to_empty_and_name_is_kept_exactly(tmp_path):
    path = save_arrays(tmp_path / "w.weights", {"x": np.zeros(2)})
    assert path.is_file() and not (tmp_path / "w.weights.npz").exists()
    assert load_arrays(path)[1] == {}


def test_model_state_dict_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(5, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1))
    save_arrays(tmp_path / "m.npz", model.state_dict(), {"repr": repr(model)})
    other = nn.Sequential(nn.Linear(5, 4, rng=2), nn.ReLU(), nn.Linear(4, 2, rng=3))
    arrays, meta = load_arrays(tmp_path / "m.npz")
    other.load_state_dict(arrays)
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_array_equal(model(x), other(x))
    assert meta["repr"] == repr(model)


def test_object_arrays_are_refused_on_save(tmp_path):
    with pytest.raises(ValueError, match=r"array 'bad' has dtype object, which \.npz cannot store without pickle"):
        save_arrays(tmp_path / "x.npz", {"ok": np.zeros(2), "bad": np.array([{"a": 1}, None], dtype=object)})
    assert list(tmp_path.iterdir()) == [], "nothing written, no temporary left"


def test_pickled_object_arrays_are_refused_on_load(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([{"a": 1}], dtype=object))  # numpy pickles object arrays
    with pytest.raises(ModelFileError, match=r"evil\.npz: array 'payload' has dtype object; handprop files hold "
                                             r"numbers only$") as info:
        load_arrays(path)
    assert "pickle" not in str(info.value).removeprefix(str(path)), "never suggest loading it with pickle"


def test_reserved_meta_name(tmp_path):
    with pytest.raises(ValueError, match=r"^array name '__meta__' is reserved for metadata$"):
        save_arrays(tmp_path / "x.npz", {"__meta__": np.zeros(1)})


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_arrays(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match=r"garbage\.npz: not a readable \.npz weights file"):
        load_arrays(garbage)


def test_atomic_write_replaces_on_success(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with atomic_write(path, "w") as f:
        f.write("new")
        assert path.read_text() == "old", "the target is not touched while writing"
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_atomic_write_keeps_the_old_file_when_the_block_raises(tmp_path):
    path = tmp_path / "weights.npz"
    save_arrays(path, {"w": np.ones(3)}, {"version": 1})
    before = path.read_bytes()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with atomic_write(path) as f:
            f.write(b"half a file")
            raise Boom
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.npz"], "temporary file left behind"
    arrays, meta = load_arrays(path)
    assert meta == {"version": 1}
    np.testing.assert_array_equal(arrays["w"], np.ones(3))


def test_atomic_write_creates_nothing_when_the_block_raises(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "new.bin") as f:
            f.write(b"x")
            raise KeyboardInterrupt  # BaseException too
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_previous_weights(tmp_path):
    path = tmp_path / "w.npz"
    save_arrays(path, {"w": np.arange(3.0)})
    with pytest.raises(TypeError):
        save_arrays(path, {"w": np.zeros(2)}, {"not json": object()})
    np.testing.assert_array_equal(load_arrays(path)[0]["w"], np.arange(3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]
