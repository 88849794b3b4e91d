"""Flatten: torch.flatten's shapes and (C, H, W) order, a free backward, its errors."""
from __future__ import annotations

import numpy as np
import pytest

from handprop import nn

from .conv_helpers import assert_matches_references, raises


@pytest.mark.parametrize("dims,shape,expected", [
    ((), (2, 3, 4, 5), (2, 60)),
    ((1, 2), (2, 3, 4, 5), (2, 12, 5)),
    ((0, -1), (2, 3, 4), (24,)),
    ((-2, -1), (2, 3, 4), (2, 3, 4)[:1] + (12,)),
    ((2, 2), (2, 3, 4), (2, 3, 4)),
])
def test_flatten_matches_torch_and_autograd(torch, dims, shape, expected):
    x = np.random.default_rng(0).standard_normal(shape)
    out = assert_matches_references(torch, nn.Flatten(*dims), x)
    assert out.shape == expected


def test_flatten_keeps_pytorchs_channel_order_for_a_channels_last_conv_output():
    conv = nn.Conv2d(1, 3, 1, bias=False, dtype=np.float64, rng=0)
    conv.weight.data[:] = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1, 1)
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(nn.Flatten()(conv(x)), [[0, 1, 2, 3, 0, 10, 20, 30, 0, 100, 200, 300]])


def test_flatten_errors():
    with raises("Flatten() cannot flatten an input of shape (5,): dims 1..-1 are out of range or in reverse order"):
        nn.Flatten()(np.zeros(5))
    with raises("Flatten(start_dim=2, end_dim=1) cannot flatten an input of shape (2, 3, 4): "
                "dims 2..1 are out of range or in reverse order"):
        nn.Flatten(2, 1)(np.zeros((2, 3, 4)))
    with raises("Flatten: start_dim must be an integer, got 1.0"):
        nn.Flatten(1.0)
    flat = nn.Flatten()
    flat(np.zeros((2, 3, 4)))
    with raises("Flatten().backward expected grad_output of shape (2, 12), got (2, 3, 4)"):
        flat.backward(np.zeros((2, 3, 4)))


def test_flatten_eval_keeps_nothing_and_input_grad_false_returns_none():
    flat = nn.Flatten()
    out = flat(np.ones((2, 3, 4)))
    assert flat.backward(np.ones_like(out), input_grad=False) is None
    flat.eval()(np.ones((2, 3, 4)))
    assert "_cache" not in vars(flat)
