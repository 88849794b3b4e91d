"""to_float_flat, train_valid_split and Normalize (fit on train, applied to every split)."""
from __future__ import annotations

import numpy as np
import pytest

from handprop.data import Normalize, to_float_flat, train_valid_split


def test_to_float_flat_scales_and_flattens():
    x = np.arange(2 * 3 * 4 * 11, dtype=np.int64).reshape(2 * 11, 3, 4).astype(np.uint8)
    x[0, 0, 0], x[-1, -1, -1] = 0, 255
    before = x.copy()
    out = to_float_flat(x)
    assert out.dtype == np.float32 and out.shape == (22, 12) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, x.reshape(22, 12).astype(np.float32) / np.float32(255))
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("bad", [np.zeros((2, 3), np.float32), np.zeros((2, 3), np.int16), np.uint8(3)])
def test_to_float_flat_wants_uint8_batches(bad):
    with pytest.raises(ValueError, match="uint8"):
        to_float_flat(bad)


def test_split_takes_the_last_n_valid_as_views():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    (xt, yt), (xv, yv) = train_valid_split(x, y, n_valid=3)
    np.testing.assert_array_equal(yt, np.arange(7))
    np.testing.assert_array_equal(yv, [7, 8, 9])
    np.testing.assert_array_equal(xv, x[7:])
    assert np.shares_memory(xt, x) and np.shares_memory(xv, x)


@pytest.mark.parametrize("n_valid", [-1, 11])
def test_split_rejects_bad_sizes(n_valid):
    with pytest.raises(ValueError, match="n_valid"):
        train_valid_split(np.zeros(10), np.zeros(10), n_valid=n_valid)
    with pytest.raises(ValueError, match="10 samples but y has 9"):
        train_valid_split(np.zeros(10), np.zeros(9), n_valid=2)


def test_fit_matches_float64_statistics_and_normalises():
    rng = np.random.default_rng(0)
    x = rng.random((1000, 300), dtype=np.float32) * 0.7 + 0.1
    norm = Normalize().fit(x)
    x64 = x.astype(np.float64)
    assert norm.mean == pytest.approx(x64.mean(), rel=1e-12)
    assert norm.std == pytest.approx(x64.std(), rel=1e-12)
    assert isinstance(norm.mean, float) and isinstance(norm.std, float)
    z = norm(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    assert abs(float(z.mean(dtype=np.float64))) < 1e-5
    assert float(z.std(dtype=np.float64)) == pytest.approx(1.0, abs=1e-5)


def test_fit_is_accurate_with_a_large_offset():
    x = 1e6 + np.random.default_rng(1).standard_normal(200_000) * 1e-2
    assert Normalize().fit(x).std == pytest.approx(x.std(), rel=1e-9)


def test_other_splits_use_the_training_statistics():
    train = np.full((4, 2), 2.0, dtype=np.float32)
    train[0] = 0.0
    valid = np.full((3, 2), 5.0, dtype=np.float32)
    norm = Normalize().fit(train)
    np.testing.assert_allclose(norm(valid), (valid - norm.mean) / norm.std, rtol=1e-6)
    assert norm(valid).mean() > 1  # not re-centred on the validation data


def test_uint8_input_and_in_place_output():
    norm = Normalize(mean=2.0, std=4.0)
    np.testing.assert_array_equal(norm(np.array([2, 6, 10], dtype=np.uint8)), [0.0, 1.0, 2.0])
    x = np.array([2.0, 6.0], dtype=np.float32)
    assert norm(x, out=x) is x
    np.testing.assert_array_equal(x, [0.0, 1.0])


def test_state_dict_round_trips_through_npz_without_pickle(tmp_path):
    norm = Normalize().fit(np.array([0.0, 1.0, 1.0, 3.0]))
    np.savez(tmp_path / "n.npz", **norm.state_dict())
    with np.load(tmp_path / "n.npz", allow_pickle=False) as f:
        restored = Normalize()
        restored.load_state_dict(dict(f))
    assert (restored.mean, restored.std) == (norm.mean, norm.std)
    x = np.linspace(-1, 4, 7, dtype=np.float32)
    np.testing.assert_array_equal(restored(x), norm(x))


def test_repr():
    assert repr(Normalize(0.1307, 0.3081)) == "Normalize(mean=0.1307, std=0.3081)"
    assert repr(Normalize()) == "Normalize(unfitted)"


def test_errors():
    with pytest.raises(ValueError, match="fit"):
        Normalize()(np.zeros(3))
    with pytest.raises(ValueError, match="fit"):
        Normalize().state_dict()
    with pytest.raises(ValueError, match="both"):
        Normalize(mean=0.5)
    with pytest.raises(ValueError, match="std > 0"):
        Normalize(0.0, 0.0)
    with pytest.raises(ValueError, match="std > 0"):
        Normalize().fit(np.ones(10))
    with pytest.raises(ValueError, match="empty"):
        Normalize().fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="missing std"):
        Normalize().load_state_dict({"mean": np.array(0.0)})
