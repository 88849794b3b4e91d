"""Tensor.erf: forward is nn.special.erf; backward 2/sqrt(pi) exp(-x^2), by central differences and PyTorch."""
from __future__ import annotations

import math

import numpy as np
import pytest

from handprop import gradcheck
from handprop.autograd import Tensor, no_grad
from handprop.nn.special import erf


def spread(shape, seed=0) -> np.ndarray:
    """Values through all three pieces of the approximation (|x| < 0.5, up to 4, beyond 4)."""
    return np.random.default_rng(seed).standard_normal(shape) * 2.5


def test_forward_is_special_erf_and_records_erf_backward():
    x = Tensor(spread((3, 4)), requires_grad=True)
    y = x.erf()
    np.testing.assert_array_equal(y.data, erf(x.data))
    assert y.grad_fn == "ErfBackward"


def test_gradient_matches_central_differences():
    x = np.concatenate([spread(40), [0.0, 0.49, 0.51, 3.9, 4.1, -4.5]])
    w = np.random.default_rng(1).standard_normal(x.shape)  # weights every element differently
    gradcheck(lambda t: (t.erf() * Tensor(w)).sum(), x, atol=1e-8, rtol=1e-6)


def test_gradient_is_the_gaussian_bump():
    x = Tensor(spread((5, 2), seed=3), requires_grad=True)
    x.erf().sum().backward()
    np.testing.assert_allclose(x.grad, 2 / math.sqrt(math.pi) * np.exp(-x.data ** 2), rtol=1e-15)


def test_value_and_gradient_match_torch(torch, close):
    x = spread((6, 7), seed=4)
    upstream = np.random.default_rng(5).standard_normal(x.shape)
    hx, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    hy, ty = hx.erf(), torch.erf(tx)
    hy.backward(upstream)
    ty.backward(torch.tensor(upstream))
    close(hy.data, ty.detach().numpy(), 1e-15, "forward")
    close(hx.grad, tx.grad.numpy(), 1e-14, "gradient")


def test_float32_stays_float32_in_value_and_gradient():
    x = Tensor(spread((4, 3)).astype(np.float32), requires_grad=True)
    y = x.erf()
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 2 / math.sqrt(math.pi) * np.exp(-x.data.astype(np.float64) ** 2),
                               rtol=1e-6, atol=1e-30)


def test_under_no_grad_nothing_is_recorded():
    x = Tensor(spread(3), requires_grad=True)
    with no_grad():
        y = x.erf()
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
