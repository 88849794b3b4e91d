"""Activations: forward and backward equal PyTorch's in float64, gradcheck passes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import handprop
from engine_helpers import check_against_torch
from handprop import nn

SETTINGS = settings(max_examples=20, deadline=None)
shapes = st.lists(st.integers(1, 7), min_size=1, max_size=3)
seeds = st.integers(0, 2**31)


def _x(seed, shape, scale=3.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


@SETTINGS
@given(seed=seeds, shape=shapes)
@pytest.mark.parametrize("make", [nn.ReLU, nn.Tanh, nn.Sigmoid], ids=["ReLU", "Tanh", "Sigmoid"])
def test_simple_activations_match_torch(torch, make, seed, shape):
    check_against_torch(torch, make(), _x(seed, shape), seed)


@SETTINGS
@given(seed=seeds, shape=shapes, slope=st.floats(0.0, 2.0))
def test_leaky_relu_matches_torch(torch, seed, shape, slope):
    check_against_torch(torch, nn.LeakyReLU(slope), _x(seed, shape), seed)


@SETTINGS
@given(seed=seeds, shape=shapes,
       leak=st.one_of(st.none(), st.floats(0.01, 0.5)),
       sub=st.one_of(st.none(), st.floats(-1.0, 1.0)),
       maxv=st.one_of(st.none(), st.floats(0.5, 6.0)))
def test_general_relu_matches_torch(torch, seed, shape, leak, sub, maxv):
    check_against_torch(torch, nn.GeneralReLU(leak, sub, maxv), _x(seed, shape), seed)


def test_general_relu_clamp_zeroes_the_gradient_above_maxv():
    m = nn.GeneralReLU(leak=0.1, sub=0.4, maxv=1.0)
    x = np.array([-2.0, 0.5, 1.2, 3.0])
    np.testing.assert_allclose(m(x), [-0.6, 0.1, 0.8, 1.0])
    np.testing.assert_allclose(m.backward(np.ones(4)), [0.1, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("module", [nn.ReLU(), nn.LeakyReLU(0.2), nn.GeneralReLU(0.1, 0.4, 2.0),
                                    nn.Tanh(), nn.Sigmoid(), nn.LogSoftmax()], ids=repr)
def test_activation_gradcheck(module):
    # inputs kept away from the kinks of relu/clamp so central differences are exact enough
    x = np.random.default_rng(0).uniform(0.05, 1.5, (4, 5)) * np.random.default_rng(1).choice([-1, 1], (4, 5))
    report = handprop.gradcheck(module, x)
    assert report.passed and [r.name for r in report.rows] == ["input"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [nn.ReLU, nn.Tanh, nn.Sigmoid, lambda: nn.LeakyReLU(0.1),
                                  lambda: nn.GeneralReLU(0.1, 0.4, 6.0), nn.LogSoftmax])
def test_activations_keep_the_dtype(make, dtype):
    m = make()
    x = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    out = m(x)
    assert out.dtype == dtype and out.shape == x.shape
    assert m.backward(np.ones_like(out)).dtype == dtype


@pytest.mark.parametrize("module,text", [
    (nn.ReLU(), "ReLU()"), (nn.Tanh(), "Tanh()"), (nn.Sigmoid(), "Sigmoid()"),
    (nn.LeakyReLU(0.2), "LeakyReLU(negative_slope=0.2)"),
    (nn.GeneralReLU(0.1, 0.4, 6.0), "GeneralReLU(leak=0.1, sub=0.4, maxv=6.0)"),
])
def test_activation_repr(module, text):
    assert repr(module) == text


def test_activations_have_no_parameters():
    for m in (nn.ReLU(), nn.LeakyReLU(), nn.GeneralReLU(), nn.Tanh(), nn.Sigmoid(), nn.LogSoftmax()):
        assert m.parameters() == [] and m.state_dict() == {}


def test_general_relu_passes_the_gradient_at_the_clamp_boundary(torch):
    """At a pre-clamp value exactly maxv, PyTorch's clamp (and handprop's autograd) pass the gradient."""
    m = nn.GeneralReLU(leak=0.1, sub=0.5, maxv=1.0)
    x = np.array([[-1.0, 1.0, 1.5, 3.0]])  # pre-clamp values: -0.6, 0.5, 1.0 (boundary), 2.5
    m(x)
    t = torch.tensor(x, requires_grad=True)
    (torch.nn.functional.leaky_relu(t, 0.1) - 0.5).clamp(max=1.0).sum().backward()
    np.testing.assert_array_equal(m.backward(np.ones_like(x)), t.grad.numpy())


def test_relu_in_eval_mode_keeps_no_array_of_the_batch():
    """Training reuses a zero array per shape; inference (maybe 10,000 images at once) keeps nothing."""
    relu = nn.ReLU()
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    relu(x)
    kept = relu.__dict__.get("_zeros")
    relu.eval()
    big = np.random.default_rng(1).standard_normal((50, 3)).astype(np.float32)
    np.testing.assert_array_equal(relu(big), np.maximum(big, 0))
    assert relu.__dict__.get("_zeros") is kept
