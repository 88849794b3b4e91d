"""What the conv, pooling and flatten tests share: the check of a float64 layer against its
registered PyTorch twin and its autograd reference, forcing a Conv2d path, hypothesis pairs,
exact-message errors."""
from __future__ import annotations

import math
import re
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from engine_helpers import rel_error
from hypothesis import strategies as st

from handprop.autograd import autograd_grads, torch_forward
from handprop.nn import conv_gemm

TOL = 1e-6
BEFORE_FORWARD = "backward() called before forward() (or twice for one forward, or after a forward in eval mode)"


def raises(message: str):
    """pytest.raises(ValueError) matching the whole message literally."""
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


@contextmanager
def conv_path(name: str):
    """Send every stride-1 Conv2d down one path, ``"shifted"`` or ``"im2col"`` (their thresholds
    otherwise choose by shape), so that a test covers that path on any shape."""
    channels, overhead = {"shifted": (1, math.inf), "im2col": (math.inf, 1.0)}[name]
    with mock.patch.multiple(conv_gemm, SHIFT_MIN_CHANNELS=channels, SHIFT_MAX_OVERHEAD=overhead):
        yield


def pairs(low: int, high: int):
    """An int or an (int, int) pair, as kernel_size / stride / padding accept."""
    one = st.integers(low, high)
    return st.one_of(one, st.tuples(one, one))


def assert_matches_references(torch, layer, x: np.ndarray, seed: int = 0, tol: float = TOL) -> np.ndarray:
    """Assert ``layer``'s forward and hand-written gradients equal PyTorch's and autograd's for
    the objective sum(layer(x) * r), r standard normal from ``seed``; return the output."""
    params = layer.parameters()
    layer.zero_grad()
    out = layer(x)
    r = np.random.default_rng(seed).standard_normal(out.shape)
    hand = [layer.backward(r, input_grad=True), *(p.grad.copy() for p in params)]

    tx = [torch.tensor(a, requires_grad=True) for a in (x, *(p.data for p in params))]
    tout = torch_forward(layer)(*tx)
    tout.backward(torch.tensor(r))
    auto = autograd_grads(layer, x, grad_output=r)

    assert out.shape == tuple(tout.shape), f"{layer!r}: output shape {out.shape} != PyTorch's {tuple(tout.shape)}"
    assert rel_error(out, tout.detach().numpy()) <= tol, f"{layer!r}: forward differs from PyTorch"
    assert rel_error(out, auto.output) <= tol, f"{layer!r}: forward differs from the Tensor reference"
    names = ["input", *(name for name, _ in layer.named_parameters())]
    for name, mine, theirs, autos in zip(names, hand, [t.grad.numpy() for t in tx],
                                         [auto.grad_input, *auto.grad_params], strict=True):
        assert rel_error(mine, theirs) <= tol, f"{layer!r}: dL/d{name} differs from PyTorch"
        assert rel_error(mine, autos) <= tol, f"{layer!r}: dL/d{name} differs from autograd"
    return out
