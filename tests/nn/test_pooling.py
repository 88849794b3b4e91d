"""MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1): equal to PyTorch and autograd in float64 over random
kernels and strides; PyTorch's tie and NaN rules for the max; errors; dtype and cache contract."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handprop import nn
from handprop.nn.window import pair

from .conv_helpers import BEFORE_FORWARD, assert_matches_references, pairs, raises

SETTINGS = settings(max_examples=30, deadline=None)
POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


@SETTINGS
@given(seed=st.integers(0, 2**31), kind=st.sampled_from(sorted(POOLS)), n=st.integers(1, 3), c=st.integers(1, 4),
       kernel=pairs(1, 4), stride=st.one_of(st.none(), pairs(1, 3)),
       extra=st.tuples(st.integers(0, 6), st.integers(0, 6)))
def test_pools_match_torch_and_autograd(torch, seed, kind, n, c, kernel, stride, extra):
    kh, kw = pair(kernel, "k", "test")
    x = np.random.default_rng(seed).standard_normal((n, c, kh + extra[0], kw + extra[1]))
    pool = POOLS[kind](kernel, stride)
    out = assert_matches_references(torch, pool, x, seed)
    sh, sw = pool.stride
    assert out.shape == (n, c, extra[0] // sh + 1, extra[1] // sw + 1)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 1, 1, 1), (3, 2, 7, 1)])
def test_global_average_pool_matches_torch_and_autograd(torch, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    assert assert_matches_references(torch, nn.AdaptiveAvgPool2d(1), x).shape == (*shape[:2], 1, 1)


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), (3, 1), ((2, 3), (1, 2))])
@pytest.mark.parametrize("values", ["zeros", "plateaus"])
def test_max_pool_ties_go_to_the_first_maximum_like_pytorch(torch, kernel, stride, values):
    rng = np.random.default_rng(0)
    shape = (2, 3, 7, 8)
    x = np.zeros(shape) if values == "zeros" else rng.integers(0, 3, shape).astype(np.float64)
    g = rng.standard_normal(nn.MaxPool2d(kernel, stride)(x).shape)
    pool = nn.MaxPool2d(kernel, stride)
    pool(x)
    mine = pool.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, kernel, stride).backward(torch.tensor(g))
    np.testing.assert_allclose(mine, tx.grad.numpy(), rtol=1e-12, atol=1e-15)  # (overlaps sum in another order)


def test_max_pool_propagates_nan_and_routes_its_gradient_like_pytorch(torch):
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6))
    x[0, 0, 1, 1] = x[0, 1, 4, 5] = x[0, 1, 5, 5] = np.nan
    g = np.arange(1.0, 19.0).reshape(1, 2, 3, 3)
    pool = nn.MaxPool2d(2)
    out = pool(x)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, 2)
    tout.backward(torch.tensor(g))
    np.testing.assert_array_equal(out, tout.detach().numpy())  # NaN where PyTorch has NaN
    np.testing.assert_array_equal(pool.backward(g), tx.grad.numpy())


def test_pools_keep_float32_and_the_channels_last_layout():
    conv = nn.Conv2d(1, 4, 3, padding=1, rng=0)
    x = conv(np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32))
    for pool in (nn.MaxPool2d(2), nn.AvgPool2d(3, stride=1), nn.AdaptiveAvgPool2d(1)):
        out = pool(x)
        assert out.dtype == np.float32 and out.strides[1] == out.itemsize  # (N, H, W, C) memory
        gx = pool.backward(np.ones_like(out))
        assert gx.dtype == np.float32 and gx.shape == x.shape and gx.strides[1] == gx.itemsize


@pytest.mark.parametrize("pool", [nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1)], ids=repr)
def test_eval_mode_keeps_nothing_for_backward(pool):
    x = np.ones((2, 3, 4, 4), np.float32)
    out = pool.eval()(x)
    assert "_cache" not in vars(pool)
    with pytest.raises(RuntimeError, match=re.escape(BEFORE_FORWARD)):
        pool.backward(np.ones_like(out))
    pool.train()(x)
    assert "_cache" in vars(pool)


@pytest.mark.parametrize("pool", [nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1)], ids=repr)
def test_input_grad_false_returns_none(pool):
    out = pool(np.ones((2, 3, 4, 4), np.float32))
    assert pool.backward(np.ones_like(out), input_grad=False) is None


def test_repr():
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2)"
    assert repr(nn.MaxPool2d(2, stride=2)) == "MaxPool2d(kernel_size=2)"
    assert repr(nn.AvgPool2d(3, stride=(2, 1))) == "AvgPool2d(kernel_size=3, stride=(2, 1))"
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(1)"


# -- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("pool", [nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1)], ids=repr)
def test_a_flat_batch_is_refused(pool):
    with raises(f"{pool!r} expected input (N, C, H, W), got (64, 784)"):
        pool(np.zeros((64, 784), np.float32))


@pytest.mark.parametrize("cls", [nn.MaxPool2d, nn.AvgPool2d])
def test_an_input_smaller_than_the_kernel_is_refused(cls):
    with raises(f"{cls.__name__}(kernel_size=3): input 2x5 is smaller than the 3x3 kernel"):
        cls(3)(np.zeros((1, 1, 2, 5), np.float32))


@pytest.mark.parametrize("cls", [nn.MaxPool2d, nn.AvgPool2d])
@pytest.mark.parametrize("args,message", [
    ((0,), "kernel_size must be a positive integer or a pair of them, got 0"),
    (((2, 2, 2),), "kernel_size must be a positive integer or a pair of them, got (2, 2, 2)"),
    ((2, (1, 0)), "stride must be a positive integer or a pair of them, got (1, 0)"),
    ((2, 1.5), "stride must be a positive integer or a pair of them, got 1.5"),
])
def test_bad_pool_arguments_are_refused(cls, args, message):
    with raises(f"{cls.__name__}: {message}"):
        cls(*args)


@pytest.mark.parametrize("size,message", [
    (2, "AdaptiveAvgPool2d: only output_size=1 (global average pooling) is supported, got 2"),
    ((1, 7), "AdaptiveAvgPool2d: only output_size=1 (global average pooling) is supported, got (1, 7)"),
    (0, "AdaptiveAvgPool2d: output_size must be a positive integer or a pair of them, got 0"),
])
def test_adaptive_pool_refuses_output_sizes_other_than_one(size, message):
    with raises(message):
        nn.AdaptiveAvgPool2d(size)


@pytest.mark.parametrize("pool,expected", [(nn.MaxPool2d(2), (2, 3, 2, 2)), (nn.AvgPool2d(3, stride=1), (2, 3, 2, 2)),
                                           (nn.AdaptiveAvgPool2d(1), (2, 3, 1, 1))], ids=repr)
def test_backward_checks_the_gradient_shape(pool, expected):
    pool(np.ones((2, 3, 4, 4), np.float32))
    with raises(f"{pool!r}.backward expected grad_output of shape {expected}, got (2, 3, 4, 4)"):
        pool.backward(np.ones((2, 3, 4, 4), np.float32))
