"""Every Tensor op against PyTorch: forward value and gradient, float64, random shapes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from handprop.autograd import Tensor

TOL = 1e-10  # float64, same maths: only round-off differences


def compare(torch, close, hp_fn, th_fn, *arrays, seed: int = 0, tol: float = TOL):
    """Run hp_fn on Tensors and th_fn on torch tensors; compare outputs and input gradients.

    The upstream gradient is random (not ones), so every output element's weight is checked.
    """
    hp_in = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    th_in = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    hp_out, th_out = hp_fn(*hp_in), th_fn(*th_in)
    assert isinstance(hp_out, Tensor)
    assert hp_out.shape == tuple(th_out.shape), f"shape {hp_out.shape} != torch {tuple(th_out.shape)}"
    assert hp_out.dtype == np.float64
    close(hp_out.data, th_out.detach().numpy(), tol, "forward")
    upstream = np.random.default_rng(seed).standard_normal(hp_out.shape)
    hp_out.backward(upstream)
    th_out.backward(torch.tensor(upstream))
    for i, (h, t) in enumerate(zip(hp_in, th_in)):
        expected = t.grad.numpy() if t.grad is not None else np.zeros(h.shape)
        assert h.grad is not None, f"input {i} got no gradient"
        assert h.grad.shape == h.shape
        close(h.grad, expected, tol, f"grad of input {i}")


def rand(shape, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return np.abs(a) + 0.5 if positive else a


# -- elementwise and scalar operators -------------------------------------------------------------
UNARY = [
    ("neg", lambda x: -x, lambda x: -x, False),
    ("exp", lambda x: x.exp(), lambda x: x.exp(), False),
    ("log", lambda x: x.log(), lambda x: x.log(), True),
    ("sqrt", lambda x: x.sqrt(), lambda x: x.sqrt(), True),
    ("abs", lambda x: x.abs(), lambda x: x.abs(), False),
    ("relu", lambda x: x.relu(), lambda x: x.relu(), False),
    ("leaky_relu", lambda x: x.leaky_relu(0.1), lambda x: __import__("torch").nn.functional.leaky_relu(x, 0.1), False),
    ("tanh", lambda x: x.tanh(), lambda x: x.tanh(), False),
    ("sigmoid", lambda x: x.sigmoid(), lambda x: x.sigmoid(), False),
    ("clamp_min", lambda x: x.clamp(min=-0.3), lambda x: x.clamp(min=-0.3), False),
    ("clamp_max", lambda x: x.clamp(max=0.2), lambda x: x.clamp(max=0.2), False),
    ("clamp_both", lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5), False),
    ("add_scalar", lambda x: x + 2.5, lambda x: x + 2.5, False),
    ("radd_scalar", lambda x: 2.5 + x, lambda x: 2.5 + x, False),
    ("sub_scalar", lambda x: x - 1.5, lambda x: x - 1.5, False),
    ("rsub_scalar", lambda x: 1.5 - x, lambda x: 1.5 - x, False),
    ("mul_scalar", lambda x: x * -3, lambda x: x * -3, False),
    ("rmul_scalar", lambda x: -3 * x, lambda x: -3 * x, False),
    ("div_scalar", lambda x: x / 4.0, lambda x: x / 4.0, False),
    ("rdiv_scalar", lambda x: 2.0 / x, lambda x: 2.0 / x, True),
    ("pow2", lambda x: x ** 2, lambda x: x ** 2, False),
    ("pow3", lambda x: x ** 3, lambda x: x ** 3, False),
    ("pow_half", lambda x: x ** 0.5, lambda x: x ** 0.5, True),
    ("pow_neg", lambda x: x ** -1.5, lambda x: x ** -1.5, True),
    ("pow0", lambda x: x ** 0, lambda x: x ** 0, False),
    ("rpow", lambda x: 2.0 ** x, lambda x: 2.0 ** x, False),
]


@pytest.mark.parametrize("name, hp_fn, th_fn, positive", UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4)], ids=str)
def test_elementwise_matches_torch(torch, close, name, hp_fn, th_fn, positive, shape):
    compare(torch, close, hp_fn, th_fn, rand(shape, seed=len(shape), positive=positive))


# -- binary operators with broadcasting ------------------------------------------------------------
BINARY = [
    ("add", lambda a, b: a + b, True),
    ("sub", lambda a, b: a - b, False),
    ("mul", lambda a, b: a * b, False),
    ("div", lambda a, b: a / b, True),
    ("pow", lambda a, b: a ** b, True),
]


@pytest.mark.parametrize("name, fn, positive_b", BINARY, ids=[b[0] for b in BINARY])
@settings(max_examples=15, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
       seed=st.integers(0, 2**16))
def test_binary_broadcasting_matches_torch(torch, close, name, fn, positive_b, shapes, seed):
    a_shape, b_shape = shapes.input_shapes
    positive_a = name == "pow"  # real powers need a positive base
    compare(torch, close, fn, fn, rand(a_shape, seed, positive_a), rand(b_shape, seed + 1, positive_b),
            seed=seed)


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 4), (4,)), ((4,), (3, 4)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((5, 1), ()),
], ids=str)
@pytest.mark.parametrize("name, fn, positive_b", BINARY, ids=[b[0] for b in BINARY])
def test_binary_fixed_broadcasts(torch, close, a_shape, b_shape, name, fn, positive_b):
    compare(torch, close, fn, fn, rand(a_shape, 1, name == "pow"), rand(b_shape, 2, positive_b))


def test_ndarray_operand_on_either_side(torch, close):
    c = rand((3, 4), 5)
    compare(torch, close, lambda x: c * x - x / (c ** 2 + 1) + c,
            lambda x: torch.tensor(c) * x - x / (torch.tensor(c) ** 2 + 1) + torch.tensor(c), rand((3, 4)))


def test_pow_with_zero_base_gives_finite_exponent_grad(torch, close):
    base = np.array([0.0, 0.0, 1.5, 2.0])
    compare(torch, close, lambda a, b: a ** b, lambda a, b: a ** b, base, np.array([2.0, 1.0, 0.5, 3.0]))


# -- matmul ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 4), (4, 5)), ((1, 4), (4, 1)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
    ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)),
], ids=str)
def test_matmul_matches_torch(torch, close, a_shape, b_shape):
    compare(torch, close, lambda a, b: a @ b, lambda a, b: a @ b, rand(a_shape, 1), rand(b_shape, 2))


def test_matmul_with_ndarray_operands(torch, close):
    w = rand((4, 2), 3)
    compare(torch, close, lambda x: x @ w, lambda x: x @ torch.tensor(w), rand((3, 4)))
    compare(torch, close, lambda x: w.T @ x, lambda x: torch.tensor(w.T) @ x, rand((4, 3)))


# -- reductions -----------------------------------------------------------------------------------
AXES = [None, 0, -1, 1, (0, 2), (-1, 0)]


def _dim(axis, ndim=3):
    return tuple(range(ndim)) if axis is None else axis


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "logsumexp"])
def test_reductions_match_torch(torch, close, op, axis, keepdims):
    x = rand((2, 3, 4), 7)
    th = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax, "min": torch.amin,
          "logsumexp": torch.logsumexp}[op]
    compare(torch, close, lambda t: getattr(t, op)(axis=axis, keepdims=keepdims),
            lambda t: th(t, dim=_dim(axis), keepdim=keepdims), x)


def test_reductions_default_arguments(torch, close):
    x = rand((3, 5), 2)
    compare(torch, close, lambda t: t.sum(), lambda t: t.sum(), x)
    compare(torch, close, lambda t: t.mean(), lambda t: t.mean(), x)
    compare(torch, close, lambda t: t.max(), lambda t: t.amax(), x)
    compare(torch, close, lambda t: t.logsumexp(), lambda t: t.logsumexp(-1), x)


@pytest.mark.parametrize("axis", [None, 0, 1], ids=str)
def test_max_splits_gradient_evenly_among_ties_like_amax(torch, close, axis):
    x = np.array([[1.0, 3.0, 3.0, -2.0], [5.0, 5.0, 5.0, 0.0], [2.0, 1.0, 0.0, 2.0]])
    compare(torch, close, lambda t: t.max(axis=axis), lambda t: t.amax(dim=_dim(axis, 2)), x)
    got = Tensor(x, requires_grad=True)
    got.max(axis=1).sum().backward()
    np.testing.assert_allclose(got.grad[1], [1 / 3, 1 / 3, 1 / 3, 0])


def test_logsumexp_is_stable_for_large_logits(torch, close):
    x = np.array([[1000.0, 1000.0, -1000.0], [-1e4, 0.0, 1e4]])
    compare(torch, close, lambda t: t.logsumexp(axis=1), lambda t: t.logsumexp(1), x)
    compare(torch, close, lambda t: t.log_softmax(), lambda t: t.log_softmax(-1), x)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_log_softmax_and_softmax_match_torch(torch, close, axis):
    x = rand((4, 6), 3) * 3
    compare(torch, close, lambda t: t.log_softmax(axis=axis), lambda t: t.log_softmax(dim=axis), x)
    compare(torch, close, lambda t: t.softmax(axis=axis), lambda t: t.softmax(dim=axis), x)


# -- shape ops and indexing -------------------------------------------------------------------------
@pytest.mark.parametrize("hp_fn, th_fn", [
    (lambda t: t.reshape(6, 4), lambda t: t.reshape(6, 4)),
    (lambda t: t.reshape((-1,)), lambda t: t.reshape(-1)),
    (lambda t: t.reshape(4, 1, -1), lambda t: t.reshape(4, 1, -1)),
    (lambda t: t.transpose(), lambda t: t.permute(2, 1, 0)),
    (lambda t: t.transpose(1, 0, 2), lambda t: t.permute(1, 0, 2)),
    (lambda t: t.transpose((2, 0, 1)), lambda t: t.permute(2, 0, 1)),
    (lambda t: t.T.reshape(4, 6).T, lambda t: t.permute(2, 1, 0).reshape(4, 6).T),
    (lambda t: t.unsqueeze(1).squeeze(), lambda t: t.unsqueeze(1).squeeze()),
    (lambda t: t.flatten(), lambda t: t.flatten()),
], ids=["reshape", "reshape-1", "reshape3", "transpose", "transpose102", "transpose_tuple", "T",
        "squeeze", "flatten"])
def test_shape_ops_match_torch(torch, close, hp_fn, th_fn):
    compare(torch, close, hp_fn, th_fn, rand((2, 3, 4), 4))


INDEXES = [
    ("int", lambda: 1),
    ("negative_int", lambda: -1),
    ("slice", lambda: slice(0, 2)),
    ("step", lambda: (slice(None), slice(None, None, 2))),
    ("ellipsis", lambda: (Ellipsis, 1)),
    ("newaxis", lambda: (None, slice(1, 3), 0)),
    ("int_array", lambda: np.array([2, 0, 2, 2])),
    ("int_list", lambda: [0, 0, 1]),
    ("two_arrays", lambda: (np.array([0, 1, 1, 3]), np.array([4, 4, 0, 4]))),
    ("array_and_slice", lambda: (np.array([[1, 1], [0, 3]]), slice(1, None))),
    ("bool_mask_rows", lambda: np.array([True, False, True, True])),
    ("bool_mask_full", lambda: np.arange(20).reshape(4, 5) % 3 == 0),
]


@pytest.mark.parametrize("make_index", [i[1] for i in INDEXES], ids=[i[0] for i in INDEXES])
def test_indexing_matches_torch(torch, close, make_index):
    index = make_index()

    def th_index(idx):
        if isinstance(idx, tuple):
            return tuple(th_index(i) for i in idx)
        return torch.tensor(idx) if isinstance(idx, np.ndarray) else idx

    compare(torch, close, lambda t: t[index], lambda t: t[th_index(index)], rand((4, 5), 9))


def test_notebook_cross_entropy_indexing_accumulates_repeats(torch, close):
    """``input[range(n), target]`` from the notebooks, with targets repeating classes."""
    target = np.array([3, 0, 3, 3, 9, 0])
    n = len(target)
    compare(torch, close,
            lambda x: -x.log_softmax()[range(n), target].mean(),
            lambda x: -x.log_softmax(-1)[range(n), torch.tensor(target)].mean(), rand((n, 10), 3))
    compare(torch, close, lambda x: x[[0, 0, 0]].sum(axis=0), lambda x: x[[0, 0, 0]].sum(0), rand((2, 3)))


# -- graphs where a value is used several times ------------------------------------------------
def test_value_used_several_times(torch, close):
    def f(x, w):
        h = x @ w
        a = h.tanh()
        return (a * h + a.exp() * x.sum(axis=1, keepdims=True) - h / (a * a + 1)).mean() + (x * x).sum()
    compare(torch, close, f, f, rand((4, 3), 1), rand((3, 5), 2))


def test_diamond_and_self_ops(torch, close):
    def f(x):
        y = x * x          # x used twice by one op
        z = y + y * 3      # y used twice
        return (z - x) / (x * x + 1) + x ** 2 + x - x
    compare(torch, close, f, f, rand((3, 3), 4))


def test_mlp_cross_entropy_graph_matches_torch(torch, close):
    """The whole notebooks' model: linear, relu, linear, log_softmax, nll."""
    target = np.array([1, 4, 4, 0, 2])

    def hp(x, w1, b1, w2, b2):
        out = ((x @ w1 + b1).relu() @ w2 + b2).log_softmax()
        return -out[range(5), target].mean()

    def th(x, w1, b1, w2, b2):
        return torch.nn.functional.cross_entropy((x @ w1 + b1).relu() @ w2 + b2, torch.tensor(target))

    compare(torch, close, hp, th, rand((5, 8), 1), rand((8, 6), 2), rand((6,), 3), rand((6, 5), 4), rand((5,), 5))


@settings(max_examples=20, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), seed=st.integers(0, 2**16))
def test_random_composite_expression(torch, close, shape, seed):
    def f(x, y):
        return ((x * y).sigmoid() + (x - y).tanh() * y.exp()).logsumexp(axis=-1).sum() + (x / (y * y + 1)).mean()
    compare(torch, close, f, f, rand(shape, seed), rand(shape, seed + 1), seed=seed)
