"""Losses and LogSoftmax: values and gradients equal PyTorch's in float64, both reductions."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import handprop
from engine_helpers import check_against_torch, rel_error
from handprop import nn

SETTINGS = settings(max_examples=25, deadline=None)
reductions = st.sampled_from(["mean", "sum"])
seeds = st.integers(0, 2**31)


def _torch_loss(torch, crit_cls, reduction, output, target):
    """(loss value, d loss / d output) from torch."""
    out = torch.from_numpy(output.copy()).requires_grad_(True)
    loss = crit_cls(reduction=reduction)(out, torch.from_numpy(np.asarray(target).copy()))
    loss.backward()
    return loss.item(), out.grad.numpy()


def _check_loss(torch, crit, torch_cls, output, target, torch_output=None, torch_target=None):
    value = crit(output, target)
    assert isinstance(value, float)
    grad = crit.backward()
    assert grad.shape == output.shape and grad.dtype == output.dtype
    t_value, t_grad = _torch_loss(torch, torch_cls, crit.reduction,
                                  output if torch_output is None else torch_output,
                                  target if torch_target is None else torch_target)
    assert rel_error(value, t_value) <= 1e-6
    assert rel_error(grad, t_grad.reshape(grad.shape)) <= 1e-6


@SETTINGS
@given(seed=seeds, shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), reduction=reductions)
def test_mse_matches_torch(torch, seed, shape, reduction):
    rng = np.random.default_rng(seed)
    output, target = rng.standard_normal(shape), rng.standard_normal(shape)
    _check_loss(torch, nn.MSELoss(reduction), torch.nn.MSELoss, output, target)


@SETTINGS
@given(seed=seeds, n=st.integers(1, 20), reduction=reductions)
def test_mse_squeezes_n1_output_against_n_target(torch, seed, n, reduction):
    # the notebooks' case: (N, 1) predictions against (N,) digit labels
    rng = np.random.default_rng(seed)
    output, target = rng.standard_normal((n, 1)), rng.integers(0, 10, n)
    _check_loss(torch, nn.MSELoss(reduction), torch.nn.MSELoss, output, target,
                torch_output=output[:, 0], torch_target=target.astype(np.float64))


@SETTINGS
@given(seed=seeds, n=st.integers(1, 12), c=st.integers(1, 10), scale=st.sampled_from([0.1, 3.0, 50.0]),
       reduction=reductions)
def test_cross_entropy_matches_torch(torch, seed, n, c, scale, reduction):
    rng = np.random.default_rng(seed)
    logits, target = rng.standard_normal((n, c)) * scale, rng.integers(0, c, n)
    _check_loss(torch, nn.CrossEntropyLoss(reduction), torch.nn.CrossEntropyLoss, logits, target)


@SETTINGS
@given(seed=seeds, n=st.integers(1, 12), c=st.integers(1, 10), reduction=reductions)
def test_nll_matches_torch(torch, seed, n, c, reduction):
    rng = np.random.default_rng(seed)
    log_probs = handprop.nn.functional.log_softmax(rng.standard_normal((n, c)) * 2)
    target = rng.integers(0, c, n)
    _check_loss(torch, nn.NLLLoss(reduction), torch.nn.NLLLoss, log_probs, target)


@SETTINGS
@given(seed=seeds, shape=st.lists(st.integers(1, 6), min_size=1, max_size=3))
def test_log_softmax_module_matches_torch(torch, seed, shape):
    check_against_torch(torch, nn.LogSoftmax(), np.random.default_rng(seed).standard_normal(shape) * 4, seed)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_log_softmax_then_nll_equals_cross_entropy(reduction):
    rng = np.random.default_rng(0)
    logits, target = rng.standard_normal((8, 5)), rng.integers(0, 5, 8)
    ls, nll, ce = nn.LogSoftmax(), nn.NLLLoss(reduction), nn.CrossEntropyLoss(reduction)
    assert nll(ls(logits), target) == pytest.approx(ce(logits, target), rel=1e-14)
    np.testing.assert_allclose(ls.backward(nll.backward()), ce.backward(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_is_stable_at_huge_logits(torch, sign, reduction):
    logits = np.array([[1e4, 0.0, -5.0], [0.0, 1e4, 1e4 - 3.0], [1.0, 2.0, 3.0], [1e4, 1e4, 1e4]]) * sign
    target = np.array([1, 2, 0, 2])
    crit = nn.CrossEntropyLoss(reduction)
    with np.errstate(over="raise", invalid="raise"):
        value = crit(logits, target)
        grad = crit.backward()
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    t_value, t_grad = _torch_loss(torch, torch.nn.CrossEntropyLoss, reduction, logits, target)
    assert rel_error(value, t_value) <= 1e-6
    assert rel_error(grad, t_grad) <= 1e-6
    assert value > 1e3  # one wrongly-confident row costs ~1e4, and it is not lost


def test_cross_entropy_float32_huge_logits_finite():
    logits = np.array([[1e4, -1e4, 0.0]], dtype=np.float32)
    crit = nn.CrossEntropyLoss()
    assert crit(logits, np.array([1])) == pytest.approx(2e4, rel=1e-6)
    g = crit.backward()
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [[1.0, -1.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize("crit,output,target", [
    (nn.MSELoss(), np.array([[0.3, -1.2], [2.0, 0.5]]), np.array([[1.0, 0.0], [0.0, 1.0]])),
    (nn.MSELoss("sum"), np.array([[0.3], [-1.2], [2.0]]), np.array([1.0, 0.0, 4.0])),
    (nn.CrossEntropyLoss(), np.array([[0.3, -1.2, 0.7], [2.0, 0.5, -0.1]]), np.array([2, 0])),
    (nn.CrossEntropyLoss("sum"), np.array([[0.3, -1.2, 0.7], [2.0, 0.5, -0.1]]), np.array([1, 1])),
    (nn.NLLLoss(), np.array([[-0.3, -1.2, -0.7], [-2.0, -0.5, -0.1]]), np.array([2, 0])),
], ids=lambda v: repr(v) if isinstance(v, nn.Loss) else "")
def test_loss_gradcheck(crit, output, target):
    report = handprop.gradcheck(crit, output, target)
    assert report.passed and report.rows[0].name == "output"


def test_sum_is_n_times_mean():
    rng = np.random.default_rng(3)
    logits, target = rng.standard_normal((7, 4)), rng.integers(0, 4, 7)
    for cls in (nn.CrossEntropyLoss, nn.NLLLoss):
        mean, total = cls("mean"), cls("sum")
        assert total(logits, target) == pytest.approx(7 * mean(logits, target), rel=1e-13)
        np.testing.assert_allclose(total.backward(), 7 * mean.backward(), rtol=1e-13)
    mean, total = nn.MSELoss("mean"), nn.MSELoss("sum")
    y = rng.standard_normal((7, 4))
    assert total(logits, y) == pytest.approx(28 * mean(logits, y), rel=1e-13)
    np.testing.assert_allclose(total.backward(), 28 * mean.backward(), rtol=1e-13)


def test_loss_defaults_and_repr():
    for cls in (nn.MSELoss, nn.CrossEntropyLoss, nn.NLLLoss):
        assert cls().reduction == "mean"
        assert repr(cls("sum")) == f"{cls.__name__}(reduction='sum')"


def test_mse_accepts_integer_and_float32_targets_in_the_output_dtype():
    out = np.array([[1.5], [2.5]], dtype=np.float32)
    crit = nn.MSELoss()
    assert crit(out, np.array([1, 3])) == pytest.approx(0.25)
    g = crit.backward()
    assert g.dtype == np.float32 and g.shape == (2, 1)
    np.testing.assert_allclose(g, [[0.5], [-0.5]])
