"""The engine: graph traversal, accumulation, freeing, grad mode, dtypes and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from handprop.autograd import Tensor, enable_grad, is_grad_enabled, no_grad, set_grad_enabled


def leaf(shape=(3, 4), seed=0, dtype=np.float64):
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=True)


# -- traversal --------------------------------------------------------------------------------
def test_deep_chain_does_not_recurse():
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 10_000] * 2, rtol=1e-9)


def test_wide_graph_each_path_counted_once():
    x = Tensor(np.float64(2.0), requires_grad=True)
    total = x * 0
    for _ in range(1000):
        total = total + x * x  # x reached through 1000 sibling nodes
    total.backward()
    assert x.grad == pytest.approx(1000 * 2 * 2.0)


# -- accumulation and zero_grad ------------------------------------------------------------------
def test_leaf_grads_accumulate_across_backward_calls_and_zero_grad_resets():
    w = leaf()
    (w * 3).sum().backward()
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad, np.full(w.shape, 5.0))
    w.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad, np.zeros(w.shape))
    w.zero_grad()
    assert w.grad is None  # PyTorch's default set_to_none=True


def test_grad_is_owned_not_aliased_to_the_seed():
    x = leaf((2,))
    seed = np.array([1.0, 2.0])
    (x + 0).backward(seed)
    x.grad += 1
    np.testing.assert_array_equal(seed, [1.0, 2.0])


def test_only_leaves_keep_grad_unless_retain_grad():
    x = leaf()
    h = x * 2
    k = (x * 3).retain_grad()
    (h * k).sum().backward()
    assert h.grad is None and not h.is_leaf and x.is_leaf
    np.testing.assert_allclose(k.grad, h.data)
    np.testing.assert_allclose(x.grad, 12 * x.data)


def test_inputs_without_requires_grad_get_no_grad():
    x, c = leaf(), Tensor(np.ones((3, 4)))
    (x * c).sum().backward()
    assert c.grad is None and x.grad is not None


def test_grad_fn_names_and_repr():
    x = leaf((2,))
    y = x * 2
    assert y.grad_fn == "MulBackward" and x.grad_fn is None
    assert "grad_fn=<MulBackward>" in repr(y) and "requires_grad=True" in repr(x)


# -- errors ------------------------------------------------------------------------------------------
def test_backward_on_non_scalar_without_gradient_raises():
    y = leaf() * 2
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*\(3, 4\)"):
        y.backward()
    y.backward(np.ones((3, 4)))  # with an explicit gradient it is fine


def test_backward_gradient_of_wrong_shape_raises():
    y = leaf() * 2
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3, 4\)"):
        y.backward(np.ones((4, 3)))


def test_backward_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0, 2.0]).sum().backward()


def test_second_backward_through_freed_graph_raises():
    x = leaf()
    loss = (x.exp() * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        loss.backward()
    # a new graph sharing a freed intermediate also refuses
    x2 = leaf()
    h = x2.tanh()
    (h * 2).sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (h * 3).sum().backward()


def test_retain_graph_allows_second_backward_and_accumulates():
    x = leaf()
    loss = (x.exp() * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    np.testing.assert_allclose(first, np.exp(x.data) * (x.data + 1))


@pytest.mark.parametrize("op, name", [
    (lambda a, b: a + b, "add"), (lambda a, b: a - b, "sub"), (lambda a, b: a * b, "mul"),
    (lambda a, b: a / b, "div"), (lambda a, b: a ** b, "pow"),
])
def test_unbroadcastable_shapes_raise_with_both_shapes(op, name):
    a, b = leaf((3, 4)), leaf((5,))
    with pytest.raises(ValueError, match=rf"cannot broadcast shapes \(3, 4\) and \(5,\) in {name}"):
        op(a, b)
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5,\)"):
        op(a, np.ones(5))
    with pytest.raises(ValueError, match=r"\(5,\) and \(3, 4\)"):
        op(np.ones(5), a)


def test_matmul_mismatch_raises_with_both_shapes():
    with pytest.raises(ValueError, match=r"cannot matmul shapes \(3, 4\) and \(5, 2\).*4 and 5"):
        leaf((3, 4)) @ leaf((5, 2))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\) and \(3, 4, 5\).*batch"):
        leaf((2, 3, 4)) @ leaf((3, 4, 5))
    with pytest.raises(ValueError, match=r"at least 1 dimension"):
        leaf(()) @ leaf((3,))


def test_reshape_mismatch_raises():
    with pytest.raises(ValueError, match=r"cannot reshape \(3, 4\).*\(5, 2\)"):
        leaf().reshape(5, 2)


def test_clamp_needs_a_bound():
    with pytest.raises(ValueError, match="min and max"):
        leaf().clamp()


# -- in-place ops ------------------------------------------------------------------------------------
def test_in_place_on_leaf_requiring_grad_is_refused_with_grad_on():
    w = leaf()
    with pytest.raises(RuntimeError, match="no_grad"):
        w -= 1.0


def test_in_place_under_no_grad_updates_data_and_keeps_identity():
    w = leaf()
    before = w.data.copy()
    (w * w).sum().backward()
    ref = w
    with no_grad():
        w -= 0.1 * w.grad
    assert w is ref and w.requires_grad
    np.testing.assert_allclose(w.data, before - 0.1 * 2 * before)


def test_backward_after_saved_tensor_modified_in_place_raises():
    w = leaf()
    loss = (w * w).sum()
    with no_grad():
        w += 1.0
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()
    x = leaf()
    y = x.exp()  # exp's backward reuses its own output
    with no_grad():
        y *= 2
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


# -- grad mode -----------------------------------------------------------------------------------------
def test_no_grad_records_nothing_and_nests():
    x = leaf()
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2 + 1
        with enable_grad():
            z = x * 2
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    assert z.requires_grad


def test_no_grad_as_decorator_and_restores_after_exceptions():
    @no_grad()
    def f(t):
        return t * 2

    assert not f(leaf()).requires_grad and is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()


def test_set_grad_enabled_function_and_context():
    set_grad_enabled(False)
    try:
        assert not is_grad_enabled()
    finally:
        set_grad_enabled(True)
    with set_grad_enabled(False):
        assert not (leaf() * 2).requires_grad
    assert is_grad_enabled()


def test_detach_shares_data_and_cuts_graph():
    x = leaf()
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = x * 1
    dy = y.detach()
    assert dy.data is y.data
    (x * d).sum().backward()
    np.testing.assert_allclose(x.grad, d.data)  # no gradient through d


# -- dtypes and construction ----------------------------------------------------------------------
def test_constructor_dtypes():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([1, 2, 3]).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.float32
    assert Tensor(np.zeros(2, np.float64)).dtype == np.float64
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64
    arr = np.zeros(3, np.float32)
    assert Tensor(arr).data is arr  # wrapped, not copied
    with pytest.raises(TypeError):
        Tensor([1, 2], dtype=np.int64)


FLOAT32_OPS = [
    lambda x, w: (x @ w + 1.5).relu().sum(),
    lambda x, w: ((x @ w) * 0.5 - 2).tanh().mean(axis=0).sum(),
    lambda x, w: (x @ w).sigmoid().max(axis=1).sum(),
    lambda x, w: -(x @ w).log_softmax()[range(4), [0, 1, 2, 0]].mean(),
    lambda x, w: ((x @ w).exp() + 1).log().sqrt().logsumexp().sum(),
    lambda x, w: (2.0 / ((x @ w) ** 2 + 1)).reshape(-1).T.clamp(0.1, 0.9).sum(),
    lambda x, w: ((x @ w) / 3 - 1.0).abs().leaky_relu(0.1).softmax().sum(),
]


@pytest.mark.parametrize("fn", FLOAT32_OPS)
def test_float32_is_preserved_through_ops_and_gradients(fn):
    x, w = leaf((4, 5), 1, np.float32), leaf((5, 3), 2, np.float32)
    out = fn(x, w)
    assert out.dtype == np.float32
    out.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_numpy_scalars_do_not_promote():
    x = leaf((2,), dtype=np.float32)
    assert (x * np.float64(2.0)).dtype == np.float32
    assert (np.float64(2.0) - x).dtype == np.float32


def test_ndarray_on_the_left_returns_tensor():
    x = leaf((2, 2))
    for y in (np.ones((2, 2)) + x, np.ones((2, 2)) * x, np.ones((2, 2)) - x, np.ones((2, 2)) / x,
              np.eye(2) @ x):
        assert isinstance(y, Tensor) and y.requires_grad


def test_mixed_precision_grads_come_back_in_each_leaf_dtype():
    a, b = leaf((3,), dtype=np.float32), leaf((3,), dtype=np.float64)
    out = (a * b).sum()
    assert out.dtype == np.float64
    out.backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad, b.data.astype(np.float32))


def test_item_numpy_and_scalar_conversions():
    t = Tensor([[2.5]])
    assert t.item() == 2.5 and float(t) == 2.5 and bool(t)
    assert t.numpy() is t.data and np.asarray(t) is t.data
    assert (t.shape, t.ndim, t.size, len(t)) == ((1, 1), 2, 1, 1)


def test_comparisons_give_masks_and_equality_stays_identity():
    t = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    np.testing.assert_array_equal(t > 0, [False, False, True])
    np.testing.assert_array_equal(t <= np.float64(0.0), [True, True, False])
    assert {t: 1}[t] == 1 and t != Tensor([-1.0, 0.0, 2.0])
    (t[t > 0] * 3).sum().backward()
    np.testing.assert_array_equal(t.grad, [0.0, 0.0, 3.0])
