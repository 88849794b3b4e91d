"""Linear: y = x @ W + b with W (in, out); equal to torch.nn.Linear (weight W.T) in float64."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import handprop
from engine_helpers import check_against_torch, rel_error, torch_linear
from handprop import nn

SETTINGS = settings(max_examples=25, deadline=None)


@SETTINGS
@given(seed=st.integers(0, 2**31), n_in=st.integers(1, 12), n_out=st.integers(1, 12),
       batch=st.lists(st.integers(1, 5), min_size=1, max_size=3), bias=st.booleans())
def test_linear_matches_torch(torch, seed, n_in, n_out, batch, bias):
    lin = nn.Linear(n_in, n_out, bias=bias, dtype=np.float64, rng=seed)
    x = np.random.default_rng(seed + 1).standard_normal((*batch, n_in))
    check_against_torch(torch, lin, x, seed)


def test_linear_weight_layout_is_in_out(torch):
    lin = nn.Linear(3, 2, dtype=np.float64, rng=0)
    assert lin.weight.shape == (3, 2) and lin.bias.shape == (2,)
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(lin(x), x @ lin.weight.data + lin.bias.data, rtol=1e-15)
    tl = torch_linear(torch, lin)
    assert tuple(tl.weight.shape) == (2, 3)


def test_linear_gradcheck():
    lin = nn.Linear(5, 3, rng=0)  # float32: gradcheck copies it to float64
    x = np.random.default_rng(1).standard_normal((4, 5))
    report = handprop.gradcheck(lin, x)
    assert report.passed
    assert [(r.name, r.shape) for r in report.rows] == [("input", (4, 5)), ("weight", (5, 3)), ("bias", (3,))]
    assert lin.weight.dtype == np.float32, "gradcheck must not convert the caller's module"


def test_linear_gradcheck_without_bias_on_3d_input():
    report = handprop.gradcheck(nn.Linear(4, 2, bias=False, rng=0),
                                np.random.default_rng(2).standard_normal((2, 3, 4)))
    assert [r.name for r in report.rows] == ["input", "weight"]


def test_linear_float32_by_default_and_forward_keeps_dtype():
    lin = nn.Linear(4, 3)
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
    assert lin(np.ones((2, 4), np.float32)).dtype == np.float32
    assert nn.Linear(4, 3, dtype=np.float64)(np.ones((2, 4))).dtype == np.float64


def test_linear_default_init_is_pytorchs():
    # PyTorch: kaiming_uniform(a=sqrt(5)) -> weight U(-1/sqrt(fan_in), 1/sqrt(fan_in)); same bound for bias
    fan_in, fan_out = 400, 300
    lin = nn.Linear(fan_in, fan_out, dtype=np.float64, rng=0)
    bound = 1 / math.sqrt(fan_in)
    w, b = lin.weight.data, lin.bias.data
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.99 * bound and np.abs(b).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound  # std of U(-a, a) is a/sqrt(3)
    assert abs(w.mean()) < 0.01 * bound
    # and the same bounds as torch.nn.Linear for a non-square layer (fan_in = in_features)
    small = nn.Linear(1000, 3, dtype=np.float64, rng=1)
    assert np.abs(small.weight.data).max() <= 1 / math.sqrt(1000)


@pytest.mark.parametrize("init,nonlinearity,std", [
    ("kaiming_normal", "relu", math.sqrt(2 / 500)),
    ("kaiming_uniform", "relu", math.sqrt(2 / 500)),
    ("xavier_normal", "tanh", 5 / 3 * math.sqrt(2 / 800)),
    ("xavier_uniform", "linear", math.sqrt(2 / 800)),
])
def test_linear_named_inits_zero_the_bias(init, nonlinearity, std):
    lin = nn.Linear(500, 300, init=init, nonlinearity=nonlinearity, dtype=np.float64, rng=0)
    assert abs(lin.weight.data.std() - std) < 0.02 * std
    np.testing.assert_array_equal(lin.bias.data, 0)


def test_linear_callable_init_fills_weight_and_bias():
    def init(w, b, rng):
        w[...] = 2.0
        b[...] = rng.integers(5, 6, b.shape)

    lin = nn.Linear(3, 2, init=init)
    np.testing.assert_array_equal(lin.weight.data, 2.0)
    np.testing.assert_array_equal(lin.bias.data, 5.0)


def test_linear_init_is_reproducible_from_rng_and_manual_seed():
    a, b = nn.Linear(6, 4, rng=7), nn.Linear(6, 4, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    handprop.manual_seed(11)
    c = nn.Linear(6, 4)
    handprop.manual_seed(11)
    d = nn.Linear(6, 4)
    np.testing.assert_array_equal(c.weight.data, d.weight.data)
    assert not np.array_equal(c.weight.data, nn.Linear(6, 4).weight.data)  # the stream moved on
    assert not np.array_equal(a.weight.data, nn.Linear(6, 4, rng=8).weight.data)


def test_reset_parameters_redraws():
    lin = nn.Linear(6, 4, rng=0)
    first = lin.weight.data.copy()
    lin.reset_parameters(rng=1)
    assert not np.array_equal(first, lin.weight.data)
    lin.reset_parameters(rng=0)
    np.testing.assert_array_equal(first, lin.weight.data)


def test_linear_repr():
    assert repr(nn.Linear(784, 50)) == "Linear(784 -> 50)"
    assert repr(nn.Linear(3, 1, bias=False)) == "Linear(3 -> 1, bias=False)"


def test_linear_input_grad_false_still_accumulates_parameter_grads(torch):
    lin = nn.Linear(4, 3, dtype=np.float64, rng=0)
    x = np.random.default_rng(1).standard_normal((5, 4))
    gy = np.random.default_rng(2).standard_normal((5, 3))
    lin(x)
    assert lin.backward(gy, input_grad=False) is None
    tl = torch_linear(torch, lin)
    tl(torch.from_numpy(x)).backward(torch.from_numpy(gy))
    assert rel_error(lin.weight.grad, tl.weight.grad.numpy().T) <= 1e-12
    assert rel_error(lin.bias.grad, tl.bias.grad.numpy()) <= 1e-12
