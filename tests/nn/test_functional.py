"""nn.functional: the pure maths, against PyTorch in float64."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_helpers import rel_error
from handprop.nn import functional as F

SETTINGS = settings(max_examples=25, deadline=None)


def _logits(seed: int, n: int, c: int, scale: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, c)) * scale


@SETTINGS
@given(seed=st.integers(0, 2**31), n=st.integers(1, 9), c=st.integers(1, 12),
       scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]))
def test_logsumexp_log_softmax_softmax_match_torch(torch, seed, n, c, scale):
    x = _logits(seed, n, c, scale)
    tx = torch.from_numpy(x)
    assert rel_error(F.logsumexp(x), torch.logsumexp(tx, -1).numpy()) <= 1e-12
    assert rel_error(F.logsumexp(x, keepdims=True), torch.logsumexp(tx, -1, keepdim=True).numpy()) <= 1e-12
    assert rel_error(F.logsumexp(x, axis=0), torch.logsumexp(tx, 0).numpy()) <= 1e-12
    assert rel_error(F.log_softmax(x), torch.log_softmax(tx, -1).numpy()) <= 1e-12
    sm = F.softmax(x)
    assert rel_error(sm, torch.softmax(tx, -1).numpy()) <= 1e-12
    np.testing.assert_allclose(sm.sum(-1), 1.0, rtol=1e-12)


def test_logsumexp_does_not_overflow_and_handles_minus_inf():
    x = np.array([[1e4, 1e4], [-1e4, -1e4 + 1.0]])
    with np.errstate(all="raise"):
        out = F.logsumexp(x)
    np.testing.assert_allclose(out, [1e4 + np.log(2), -1e4 + 1 + np.log1p(np.exp(-1))], rtol=1e-15)
    with np.errstate(divide="ignore"):
        assert F.logsumexp(np.array([[-np.inf, -np.inf]]))[0] == -np.inf  # not nan


@SETTINGS
@given(seed=st.integers(0, 2**31), shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       slope=st.floats(0.0, 1.0))
def test_elementwise_functions_match_torch(torch, seed, shape, slope):
    x = np.random.default_rng(seed).standard_normal(shape) * 4
    tx = torch.from_numpy(x)
    np.testing.assert_array_equal(F.relu(x), torch.relu(tx).numpy())
    np.testing.assert_allclose(F.leaky_relu(x, slope), torch.nn.functional.leaky_relu(tx, slope).numpy(),
                               rtol=1e-15, atol=0)
    assert rel_error(F.tanh(x), torch.tanh(tx).numpy()) <= 1e-12
    assert rel_error(F.sigmoid(x), torch.sigmoid(tx).numpy()) <= 1e-12


def test_sigmoid_never_overflows_and_keeps_dtype():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = F.sigmoid(x)
    assert s.dtype == np.float32
    np.testing.assert_allclose(s, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-7)


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-6), (np.float64, 1e-14)])
def test_sigmoid_is_accurate_elementwise_in_the_tails(torch, dtype, rtol):
    # every element to its own relative precision, not just relative to the largest one
    x = np.array([-80.0, -40.0, -20.0, -10.0, -3.0, -1e-3, 0.0, 1e-3, 3.0, 10.0, 40.0], dtype=dtype)
    expected = torch.sigmoid(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(F.sigmoid(x), expected, rtol=rtol, atol=0)


@pytest.mark.parametrize("leak,sub,maxv", [(None, None, None), (0.1, 0.4, 6.0), (None, 0.5, None),
                                           (0.2, None, 1.0)])
def test_general_relu_matches_torch_composition(torch, leak, sub, maxv):
    from engine_helpers import torch_general_relu
    x = np.random.default_rng(0).standard_normal((7, 5)) * 5
    expected = torch_general_relu(torch, torch.from_numpy(x), leak, sub, maxv).numpy()
    np.testing.assert_allclose(F.general_relu(x, leak, sub, maxv), expected, rtol=1e-15, atol=0)


def test_linear_is_x_at_w_plus_b():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    np.testing.assert_allclose(F.linear(x, w, b), x @ w + b, rtol=1e-15)
    np.testing.assert_allclose(F.linear(x, w), x @ w, rtol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_losses_match_torch(torch, reduction):
    rng = np.random.default_rng(2)
    logits, target = rng.standard_normal((6, 4)) * 3, rng.integers(0, 4, 6)
    tl, tt = torch.from_numpy(logits), torch.from_numpy(target)
    tF = torch.nn.functional
    assert rel_error(F.cross_entropy(logits, target, reduction),
                     tF.cross_entropy(tl, tt, reduction=reduction).numpy()) <= 1e-12
    lp = F.log_softmax(logits)
    assert rel_error(F.nll(lp, target, reduction),
                     tF.nll_loss(torch.from_numpy(lp), tt, reduction=reduction).numpy()) <= 1e-12
    pred, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    assert rel_error(F.mse(pred, y, reduction),
                     tF.mse_loss(torch.from_numpy(pred), torch.from_numpy(y), reduction=reduction).numpy()) <= 1e-12


def test_one_hot_default_and_epfl_targets():
    t = np.array([2, 0, 1])
    np.testing.assert_array_equal(F.one_hot(t, 3), np.eye(3, dtype=np.float32)[t])
    assert F.one_hot(t, 3).dtype == np.float32
    epfl = F.one_hot(t, 4, dtype=np.float64, on=0.9, off=-0.9)
    assert epfl.dtype == np.float64 and epfl.shape == (3, 4)
    np.testing.assert_array_equal(epfl[np.arange(3), t], 0.9)
    assert np.sum(epfl == -0.9) == 9


@pytest.mark.parametrize("target,message", [
    (np.array([0, 3]), r"one_hot expected class targets in \[0, 3\), got 3"),
    (np.array([-1, 0]), r"one_hot expected class targets in \[0, 3\), got -1"),
    (np.array([0.0, 1.0]), r"one_hot expected integer class targets, got dtype float64"),
    (np.array([[0, 1]]), r"one_hot expected targets of shape \(N,\), got \(1, 2\)"),
])
def test_one_hot_rejects_bad_targets(target, message):
    with pytest.raises(ValueError, match=message):
        F.one_hot(target, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,order", [((64, 50), "C"), ((512, 10), "F"), ((1, 3), "C"), ((0, 4), "C")])
def test_sum_rows_is_the_sum_over_the_batch(dtype, shape, order):
    x = np.asarray(np.random.default_rng(shape[0]).standard_normal(shape), dtype=dtype, order=order)
    total = F.sum_rows(x)
    assert total.shape == (shape[1],) and total.dtype == dtype
    np.testing.assert_allclose(total, x.astype(np.float64).sum(0), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5)
    total += 1  # the result is the caller's; the ones it was computed with are not
    np.testing.assert_allclose(F.sum_rows(x), total - 1, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rows", [F.SUM_ROWS_ONE_PASS + 1, 50176, 12544 + 7])
def test_sum_rows_of_many_float32_rows_keeps_float64_accuracy_to_a_few_roundings(rows):
    """A BatchNorm's statistics over 64 x 28 x 28 pixels: one pass of adds would be ~3e-6 off."""
    x = (np.random.default_rng(rows).standard_normal((rows, 16)) * 2 + 3).astype(np.float32)
    exact = x.astype(np.float64).sum(0)
    assert np.max(np.abs(F.sum_rows(x) - exact) / exact) < 6e-7
    assert np.max(np.abs(F.sum_rows(x[:, :5]) - exact[:5]) / exact[:5]) < 3e-5  # strided: one pass, still close
