"""Initialisers: PyTorch's formulas on handprop's (in, out) layout, checked statistically."""
from __future__ import annotations

import math

import numpy as np
import pytest

import handprop
from handprop import nn
from handprop.nn import init

FAN_IN, FAN_OUT = 600, 200  # weight (in, out): fan_in = shape[0]
SHAPE = (FAN_IN, FAN_OUT)   # 120,000 draws: the std estimate is good to ~0.5 %


def _w(dtype=np.float64):
    return np.empty(SHAPE, dtype=dtype)


def test_fans_follow_the_linear_and_conv_layouts():
    assert init.fans(np.empty((784, 50))) == (784, 50)
    assert init.fans(np.empty((3, 4, 5))) == (20, 15)  # conv layout (out, in, *kernel), as PyTorch
    assert init.fans(np.empty((32, 1, 3, 3))) == (9, 288)
    assert init.fans(np.empty(7)) == (7, 7)
    with pytest.raises(ValueError, match=r"fans: expected at least a 1-D weight, got shape \(\)"):
        init.fans(np.empty(()))


@pytest.mark.parametrize("name,param,gain", [
    ("linear", None, 1.0), ("sigmoid", None, 1.0), ("identity", None, 1.0),
    ("tanh", None, 5 / 3), ("relu", None, math.sqrt(2)),
    ("leaky_relu", None, math.sqrt(2 / (1 + 0.01**2))), ("leaky_relu", 0.2, math.sqrt(2 / 1.04)),
    ("leaky_relu", math.sqrt(5), math.sqrt(1 / 3)),
])
def test_calculate_gain_matches_torch(torch, name, param, gain):
    assert init.calculate_gain(name, param) == pytest.approx(gain, rel=1e-12)
    if name != "identity":  # a handprop alias torch does not know
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param),
                                                                 rel=1e-12)


@pytest.mark.parametrize("mode,fan", [("fan_in", FAN_IN), ("fan_out", FAN_OUT)])
@pytest.mark.parametrize("nonlinearity,a,gain", [("relu", 0.0, math.sqrt(2)),
                                                 ("leaky_relu", 0.1, math.sqrt(2 / 1.01)),
                                                 ("linear", 0.0, 1.0)])
def test_kaiming_normal_std(mode, fan, nonlinearity, a, gain):
    w = init.kaiming_normal_(_w(), a=a, mode=mode, nonlinearity=nonlinearity, rng=0)
    std = gain / math.sqrt(fan)
    assert abs(w.mean()) < 0.02 * std
    assert w.std() == pytest.approx(std, rel=0.01)
    assert np.abs(w).max() > 3 * std  # a normal, not a truncated or uniform draw


@pytest.mark.parametrize("mode,fan", [("fan_in", FAN_IN), ("fan_out", FAN_OUT)])
@pytest.mark.parametrize("nonlinearity,gain", [("relu", math.sqrt(2)), ("tanh", 5 / 3)])
def test_kaiming_uniform_bound(mode, fan, nonlinearity, gain):
    w = init.kaiming_uniform_(_w(), mode=mode, nonlinearity=nonlinearity, rng=1)
    bound = gain * math.sqrt(3 / fan)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    assert abs(w.mean()) < 0.01 * bound


def test_kaiming_matches_torch_std_on_the_transposed_layout(torch):
    # torch's (out, in) weight with mode fan_in has the same std as handprop's (in, out)
    t = torch.empty(FAN_OUT, FAN_IN, dtype=torch.float64)
    torch.manual_seed(0)
    torch.nn.init.kaiming_normal_(t, nonlinearity="relu")
    w = init.kaiming_normal_(_w(), nonlinearity="relu", rng=0)
    assert w.std() == pytest.approx(t.std().item(), rel=0.02)
    torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5))
    w = init.kaiming_uniform_(_w(), a=math.sqrt(5), rng=0)
    assert np.abs(w).max() == pytest.approx(t.abs().max().item(), rel=1e-3)


@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_xavier_uniform_and_normal(gain):
    bound = gain * math.sqrt(6 / (FAN_IN + FAN_OUT))
    u = init.xavier_uniform_(_w(), gain=gain, rng=2)
    assert np.abs(u).max() <= bound and np.abs(u).max() > 0.999 * bound
    assert u.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    n = init.xavier_normal_(_w(), gain=gain, rng=3)
    assert n.std() == pytest.approx(gain * math.sqrt(2 / (FAN_IN + FAN_OUT)), rel=0.01)
    assert abs(n.mean()) < 0.01 * n.std()


def test_normal_uniform_zeros():
    n = init.normal_(_w(), mean=2.0, std=0.5, rng=4)
    assert n.mean() == pytest.approx(2.0, abs=0.005) and n.std() == pytest.approx(0.5, rel=0.01)
    u = init.uniform_(_w(), -3.0, 1.0, rng=5)
    assert u.min() >= -3.0 and u.max() < 1.0 and u.mean() == pytest.approx(-1.0, abs=0.02)
    z = init.zeros_(np.ones(SHAPE, np.float32))
    assert z.dtype == np.float32 and not z.any()


@pytest.mark.parametrize("fn", [init.kaiming_normal_, init.kaiming_uniform_, init.xavier_normal_,
                                init.xavier_uniform_, init.normal_, init.zeros_])
def test_initialisers_fill_in_place_keep_dtype_and_accept_parameters(fn):
    a = np.ones((30, 20), np.float32)
    assert fn(a) is a and a.dtype == np.float32
    p = nn.Parameter(np.ones((30, 20), np.float32))
    data = p.data
    assert fn(p) is data and p.data is data
    if fn is not init.zeros_:
        assert len(np.unique(a)) > 100 and len(np.unique(data)) > 100


@pytest.mark.parametrize("fn", [init.kaiming_normal_, init.kaiming_uniform_, init.xavier_normal_,
                                init.xavier_uniform_, init.normal_, init.uniform_])
def test_reproducible_from_rng_and_manual_seed(fn):
    a = fn(np.empty((8, 5)), rng=42)
    b = fn(np.empty((8, 5)), rng=np.random.default_rng(42))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fn(np.empty((8, 5)), rng=43))
    handprop.manual_seed(9)
    c = fn(np.empty((8, 5)))
    d = fn(np.empty((8, 5)))
    assert not np.array_equal(c, d), "the default generator advances"
    handprop.manual_seed(9)
    np.testing.assert_array_equal(fn(np.empty((8, 5))), c)


def test_shared_generator_draws_a_stream():
    rng = np.random.default_rng(0)
    a, b = init.normal_(np.empty(5), rng=rng), init.normal_(np.empty(5), rng=rng)
    np.testing.assert_array_equal(np.concatenate([a, b]), np.random.default_rng(0).standard_normal(10))


@pytest.mark.parametrize("call,error,message", [
    (lambda: init.kaiming_normal_(np.empty((3, 3)), mode="fan_avg"), ValueError,
     r"mode must be 'fan_in' or 'fan_out', got 'fan_avg'"),
    (lambda: init.calculate_gain("selu"), ValueError, r"calculate_gain: unsupported nonlinearity 'selu'"),
    (lambda: init.normal_(np.empty(3), rng="seed"), TypeError,
     r"rng must be a numpy.random.Generator, an int seed or None, got str"),
    (lambda: init.normal_(np.empty(3), rng=True), TypeError, r"got bool"),
])
def test_init_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
