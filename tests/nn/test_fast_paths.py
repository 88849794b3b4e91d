"""The performance paths keep the semantics: fused softmax-cross-entropy, the ReLU mask multiply,
and no result that a later call overwrites (no buffer is shared between steps)."""
from __future__ import annotations

import numpy as np
import pytest

from handprop import nn
from handprop.nn import functional as F


def _unfused(output, target, reduction):
    """The textbook path: log_softmax, NLL, grad = softmax - onehot (scaled)."""
    logp = F.log_softmax(output.astype(np.float64))
    n = output.shape[0]
    loss = -logp[np.arange(n), target].sum() / (n if reduction == "mean" else 1)
    grad = np.exp(logp)
    grad[np.arange(n), target] -= 1
    return loss, grad / (n if reduction == "mean" else 1)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("n,c,scale", [(1, 1, 1.0), (7, 3, 1.0), (64, 10, 5.0), (33, 10, 1e4), (5, 2, -1e4)])
def test_fused_cross_entropy_matches_unfused(n, c, scale, reduction):
    rng = np.random.default_rng(n * c)
    output = (rng.standard_normal((n, c)) * scale).astype(np.float32)
    target = rng.integers(0, c, n)
    crit = nn.CrossEntropyLoss(reduction=reduction)
    loss = crit(output, target)
    grad = crit.backward()
    ref_loss, ref_grad = _unfused(output, target, reduction)
    assert grad.shape == output.shape and grad.dtype == np.float32
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-5 * max(1.0, abs(scale)))
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_cross_entropy_non_finite_logits_give_non_finite_loss_like_logsumexp():
    output = np.array([[0.0, np.inf], [1.0, 2.0]], dtype=np.float32)
    crit = nn.CrossEntropyLoss()
    loss = crit(output, np.array([0, 1]))
    unfused = F.cross_entropy(output, np.array([0, 1]))
    assert np.isnan(loss) == np.isnan(unfused)
    assert crit.backward().shape == (2, 2)


def test_cross_entropy_grads_of_successive_steps_do_not_alias():
    rng = np.random.default_rng(0)
    crit = nn.CrossEntropyLoss()
    a, b = rng.standard_normal((2, 8, 10), dtype=np.float32)
    t = rng.integers(0, 10, 8)
    crit(a, t)
    ga = crit.backward()
    ga_copy = ga.copy()
    crit(b, t)
    gb = crit.backward()
    np.testing.assert_array_equal(ga, ga_copy)
    assert not np.shares_memory(ga, gb)
    assert not np.shares_memory(ga, a)


def test_relu_backward_masks_without_touching_its_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 5), dtype=np.float32)
    g = rng.standard_normal((16, 5), dtype=np.float32)
    g_copy = g.copy()
    relu = nn.ReLU()
    relu(x)
    gx = relu.backward(g)
    np.testing.assert_array_equal(gx, np.where(x > 0, g, 0))
    np.testing.assert_array_equal(g, g_copy)
    assert gx.dtype == np.float32 and not np.shares_memory(gx, g)


def test_training_step_is_float32_end_to_end():
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Linear(20, 8, rng=0), nn.ReLU(), nn.Linear(8, 4, rng=1))
    crit = nn.CrossEntropyLoss()
    out = model(rng.standard_normal((6, 20), dtype=np.float32))
    assert out.dtype == np.float32
    crit(out, rng.integers(0, 4, 6))
    g = crit.backward()
    assert g.dtype == np.float32
    gx = model.backward(g, input_grad=True)
    assert gx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def _linear_step(lin, x, g):
    lin(x)
    lin.backward(g)


def test_a_released_gradient_is_written_directly_and_then_accumulated():
    rng = np.random.default_rng(3)
    lin = nn.Linear(6, 4, rng=0)
    x, g = rng.standard_normal((5, 6), dtype=np.float32), rng.standard_normal((5, 4), dtype=np.float32)
    _linear_step(lin, x, g)
    once = (lin.weight.grad.copy(), lin.bias.grad.copy())
    np.testing.assert_allclose(once[0], x.T @ g, rtol=1e-6)
    np.testing.assert_allclose(once[1], g.sum(0), rtol=1e-6)
    _linear_step(lin, x, g)  # accumulates: twice the gradient
    np.testing.assert_allclose(lin.weight.grad, 2 * once[0], rtol=1e-6)
    np.testing.assert_allclose(lin.bias.grad, 2 * once[1], rtol=1e-6)
    lin.zero_grad()  # nothing holds the buffers: they are let go, not filled
    assert lin.weight._grad is None and lin.bias._grad is None
    _linear_step(lin, x, g)  # after zero_grad: exactly one gradient again, written by the GEMM
    np.testing.assert_allclose(lin.weight.grad, x.T @ g, rtol=1e-6)
    np.testing.assert_allclose(lin.bias.grad, g.sum(0), rtol=1e-6)
    lin.zero_grad()
    assert not lin.weight.grad.any() and not lin.bias.grad.any()  # reading a released gradient: zeros


def test_writes_through_grad_after_zero_grad_are_kept():
    rng = np.random.default_rng(4)
    lin = nn.Linear(3, 2, rng=0)
    x, g = rng.standard_normal((4, 3), dtype=np.float32), rng.standard_normal((4, 2), dtype=np.float32)
    lin.zero_grad()
    lin.weight.grad[...] = 1.0  # e.g. a regulariser's gradient added by hand
    lin.bias.grad += 2.0
    _linear_step(lin, x, g)
    np.testing.assert_allclose(lin.weight.grad, 1.0 + x.T @ g, rtol=1e-6)
    np.testing.assert_allclose(lin.bias.grad, 2.0 + g.sum(0), rtol=1e-6)


def test_optimizer_zero_grad_reuses_buffers_and_copies_keep_state():
    import copy
    from handprop import optim
    rng = np.random.default_rng(5)
    lin = nn.Linear(3, 2, rng=0)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    x, g = rng.standard_normal((4, 3), dtype=np.float32), rng.standard_normal((4, 2), dtype=np.float32)
    _linear_step(lin, x, g)
    buffers = [p.grad for p in lin.parameters()]
    opt.step()
    opt.zero_grad()
    assert all(p.grad is b and not b.any() for p, b in zip(lin.parameters(), buffers))
    twin = copy.deepcopy(lin)
    _linear_step(lin, x, g)
    _linear_step(twin, x, g)
    for p, q in zip(lin.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)
        assert not np.shares_memory(p.grad, q.grad)
    lin.to(np.float64)
    lin.zero_grad()
    _linear_step(lin, x.astype(np.float64), g.astype(np.float64))
    assert lin.weight.grad.dtype == np.float64
    np.testing.assert_allclose(lin.weight.grad, x.T.astype(np.float64) @ g.astype(np.float64), rtol=1e-6)


def test_zero_grad_zeroes_held_buffers_and_views():
    rng = np.random.default_rng(6)
    lin = nn.Linear(3, 2, rng=0)
    x, g = rng.standard_normal((4, 3), dtype=np.float32), rng.standard_normal((4, 2), dtype=np.float32)
    _linear_step(lin, x, g)
    held = lin.weight.grad          # a reference taken before zero_grad
    view = lin.bias.grad[:1]        # a view of the buffer
    lin.zero_grad()
    assert not held.any() and not view.any()  # held buffers are zeroed at once
    del held, view
    _linear_step(lin, x, g)
    lin.zero_grad()
    assert not lin.weight.grad.any() and not lin.bias.grad.any()
    lin.zero_grad()
    _linear_step(lin, x, g)         # a backward after it sees a zero start
    np.testing.assert_allclose(lin.weight.grad, x.T @ g, rtol=1e-6)
    np.testing.assert_allclose(lin.bias.grad, g.sum(0), rtol=1e-6)


def test_relu_gives_the_same_values_on_both_sides_of_the_zeros_array_size(monkeypatch):
    """Inputs up to RELU_ZEROS_MAX_SIZE are compared with a cached zeros array, larger ones with
    a scalar 0; a layer fed both sizes in turn gives max(x, 0) and its mask every time."""
    from handprop.nn import activation
    monkeypatch.setattr(activation, "RELU_ZEROS_MAX_SIZE", 40)
    rng = np.random.default_rng(4)
    relu = nn.ReLU()
    for shape in [(4, 5), (8, 10), (4, 5), (3, 5), (8, 10)]:
        x = rng.standard_normal(shape, dtype=np.float32)
        g = rng.standard_normal(shape, dtype=np.float32)
        out = relu(x)
        np.testing.assert_array_equal(out, np.maximum(x, 0))
        assert out.dtype == np.float32 and not np.shares_memory(out, x)
        np.testing.assert_array_equal(relu.backward(g), np.where(x > 0, g, 0))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int32, np.int64])
def test_fused_cross_entropy_takes_targets_of_every_integer_type(dtype):
    """The flat index target * N + i must not wrap in the targets' own type (uint8: 9 * 64)."""
    rng = np.random.default_rng(5)
    output = rng.standard_normal((64, 10)).astype(np.float32)
    target = rng.integers(0, 10, 64)
    crit = nn.CrossEntropyLoss()
    loss, grad = crit(output, target.astype(dtype)), crit.backward()
    ref_loss, ref_grad = _unfused(output, target, "mean")
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)
