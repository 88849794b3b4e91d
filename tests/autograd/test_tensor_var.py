"""Tensor.var: NumPy's variance (``ddof``), its gradient 2 (x - mean) / (n - ddof), against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

from handprop import gradcheck
from handprop.autograd import Tensor, no_grad


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * 3 + 1


def _dim(axis, ndim=3):
    return tuple(range(ndim)) if axis is None else axis


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (-1, 1)], ids=str)
def test_value_and_gradient_match_torch(torch, close, axis, keepdims, ddof):
    x = _data((4, 3, 5), seed=ddof)
    hx, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    hy = hx.var(axis=axis, keepdims=keepdims, ddof=ddof)
    ty = torch.var(tx, dim=_dim(axis), keepdim=keepdims, correction=ddof)
    assert hy.shape == tuple(ty.shape) and hy.grad_fn == "VarBackward"
    close(hy.data, ty.detach().numpy(), 1e-13, "forward")
    np.testing.assert_allclose(hy.data, np.var(x, axis=axis, keepdims=keepdims, ddof=ddof), rtol=1e-14)
    upstream = np.random.default_rng(5).standard_normal(hy.shape)
    hy.backward(upstream)
    ty.backward(torch.tensor(upstream))
    close(hx.grad, tx.grad.numpy(), 1e-13, "gradient")


def test_gradient_matches_central_differences():
    w = np.random.default_rng(1).standard_normal(5)
    gradcheck(lambda t: (t.var(axis=0, ddof=1) * Tensor(w)).sum(), _data((6, 5)), atol=1e-8, rtol=1e-6)


def test_gradient_of_a_constant_is_zero_and_of_one_value_with_ddof_1_nan():
    x = Tensor(np.full((3, 2), 4.0), requires_grad=True)
    x.var(axis=0).sum().backward()
    assert not x.grad.any()
    one = Tensor(np.ones((1, 2)), requires_grad=True)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="Degrees of freedom <= 0"):
        out = one.var(axis=0, ddof=1)
    out.sum().backward()
    assert np.isnan(out.data).all() and np.isnan(one.grad).all()  # NumPy's and torch's answer, not 0


def test_float32_stays_float32_and_no_grad_records_nothing():
    x = Tensor(_data((4, 3)).astype(np.float32), requires_grad=True)
    y = x.var(axis=1)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    with no_grad():
        assert x.var().grad_fn is None
