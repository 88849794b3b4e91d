"""Tensor.pad and Tensor.unfold (the ops Conv2d and the pools lower to in autograd): values and
gradients equal PyTorch's (F.pad, Tensor.unfold), and central differences; their errors."""
from __future__ import annotations

import re

import numpy as np
import pytest

from handprop.autograd import Tensor
from handprop.gradcheck import numerical_grad


def _grads(torch, x: np.ndarray, hp_fn, th_fn, seed: int = 0):
    """(handprop output, dL/dx), (torch output, dL/dx) for L = sum(f(x) * r)."""
    xt = Tensor(x, requires_grad=True)
    out = hp_fn(xt)
    r = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(r)
    tx = torch.tensor(x, requires_grad=True)
    tout = th_fn(tx)
    tout.backward(torch.tensor(r))
    return (out.data, xt.grad), (tout.detach().numpy(), tx.grad.numpy())


@pytest.mark.parametrize("widths", [((0, 0), (1, 2), (3, 0)), ((1, 1), (0, 0), (0, 0)), ((0, 0),) * 3])
def test_pad_matches_torch(torch, close, widths):
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    flat = tuple(n for before, after in reversed(widths) for n in (before, after))  # F.pad: last axis first
    (out, grad), (t_out, t_grad) = _grads(torch, x, lambda t: t.pad(widths),
                                          lambda t: torch.nn.functional.pad(t, flat))
    close(out, t_out, 0, "pad forward")
    close(grad, t_grad, 0, "pad backward")


@pytest.mark.parametrize("axis,size,step", [(1, 3, 1), (1, 3, 2), (-1, 2, 3), (0, 1, 1), (2, 5, 4), (1, 7, 1)])
def test_unfold_matches_torch(torch, close, axis, size, step):
    x = np.random.default_rng(2).standard_normal((3, 7, 5))
    (out, grad), (t_out, t_grad) = _grads(torch, x, lambda t: t.unfold(axis, size, step),
                                          lambda t: t.unfold(axis, size, step))
    close(out, t_out, 0, "unfold forward")
    close(grad, t_grad, 1e-15, "unfold backward")


def test_overlapping_windows_accumulate_like_central_differences(close):
    """Two unfolds (an im2col) over overlapping windows, checked without any other library."""
    x = np.random.default_rng(3).standard_normal((2, 6, 5))
    r = np.random.default_rng(4).standard_normal((2, 5, 3, 3, 2))

    def f(t):
        return t.pad(((0, 0), (1, 0), (0, 1))).unfold(1, 3, 1).unfold(2, 2, 2)
    xt = Tensor(x, requires_grad=True)
    f(xt).backward(r)
    numeric = numerical_grad(lambda: float(np.vdot(f(Tensor(x)).data, r)), x)
    close(xt.grad, numeric, 1e-8, "unfold(pad) backward")


def test_unfold_output_owns_its_memory():
    x = Tensor(np.arange(6.0))
    out = x.unfold(0, 3, 1)
    out.data[0, 1] = 100.0  # (a read-only sliding view would refuse this, a shared one would change x)
    assert x.data[1] == 1.0


@pytest.mark.parametrize("call,message", [
    (lambda t: t.pad(((1, 1),)), "pad: pad_width must be one (before, after) pair of non-negative ints per axis "
                                 "(2 for shape (2, 3)), got ((1, 1),)"),
    (lambda t: t.pad(((0, 0), (1, -1))), "pad: pad_width must be one (before, after) pair"),
    (lambda t: t.pad(((0, 0), (1.0, 1))), "pad: pad_width must be one (before, after) pair"),
    (lambda t: t.pad(((0, 0), (1, 1, 1))), "pad: pad_width must be one (before, after) pair"),
    (lambda t: t.unfold(2, 1, 1), "unfold: axis 2 is out of range for shape (2, 3)"),
    (lambda t: t.unfold(1, 0, 1), "unfold: size must be a positive integer, got 0"),
    (lambda t: t.unfold(1, 2, 0), "unfold: step must be a positive integer, got 0"),
    (lambda t: t.unfold(1, 4, 1), "unfold: size 4 is larger than axis 1 of shape (2, 3)"),
])
def test_bad_arguments_are_value_errors(call, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        call(Tensor(np.zeros((2, 3)), requires_grad=True))
