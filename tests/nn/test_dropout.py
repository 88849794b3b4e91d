"""Dropout: the gradient for the mask the forward drew, the mask's frequency, seeding, eval, errors.

The trust matrix checks Dropout(p=0) four ways; with p > 0 the references cannot redraw the
random mask, so this file checks the backward against the mask read back from the output.
"""
from __future__ import annotations

import numpy as np
import pytest

import handprop
from handprop import nn
from handprop.nn import registry
from handprop.serialize import build_model


def _inputs(shape, seed=0):
    """Nonzero inputs, so a zero in the output means a dropped element."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(x == 0, 1.0, x)


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
def test_backward_is_grad_times_the_forward_mask_over_keep_probability(p):
    layer = nn.Dropout(p, rng=1)
    x, g = _inputs((40, 30)), np.random.default_rng(2).standard_normal((40, 30))
    out = layer(x)
    keep = out != 0
    np.testing.assert_allclose(out, np.where(keep, x / (1 - p), 0), rtol=1e-15)  # kept ones scaled, the rest 0
    np.testing.assert_allclose(layer.backward(g), g * keep / (1 - p), rtol=1e-15)
    if p > 0:
        assert not np.array_equal(layer(x) != 0, keep), "a new mask each forward"


@pytest.mark.parametrize("p", [0.1, 0.5, 0.75])
def test_the_mask_drops_a_fraction_p_and_keeps_the_mean(p):
    n = 1_000_000
    out = nn.Dropout(p, rng=123)(np.ones(n, np.float32))
    dropped = float(np.mean(out == 0))
    sigma = np.sqrt(p * (1 - p) / n)  # binomial standard deviation of the observed fraction
    assert abs(dropped - p) < 5 * sigma, f"dropped {dropped:.5f}, expected {p} +- {5 * sigma:.5f}"
    assert abs(float(out.mean(dtype=np.float64)) - 1) < 5 * sigma / (1 - p)  # E[out] = x: inverted dropout
    columns = out.reshape(1000, 1000) == 0  # no pattern along either axis: every row and column near p
    assert np.abs(columns.mean(axis=0) - p).max() < 6 * np.sqrt(p * (1 - p) / 1000)
    assert np.abs(columns.mean(axis=1) - p).max() < 6 * np.sqrt(p * (1 - p) / 1000)


def test_masks_come_from_the_seeded_generator():
    x = _inputs((8, 9))
    handprop.manual_seed(5)
    first = nn.Dropout(0.5)(x)
    handprop.manual_seed(5)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x), first)  # default: handprop's generator, reseeded
    a, b = nn.Dropout(0.5, rng=7), nn.Dropout(0.5, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a(x), b(x))
    np.testing.assert_array_equal(a(x), b(x))  # the layer's generator advances: same sequence of masks
    assert not np.array_equal(a(x), first)


def test_eval_is_the_identity_and_keeps_nothing():
    layer = nn.Dropout(0.5, rng=0).eval()
    x = _inputs((4, 5))
    assert layer(x) is x
    assert "_cache" not in vars(layer)
    with pytest.raises(RuntimeError, match="after a forward in eval mode"):
        layer.backward(np.ones_like(x))
    assert (layer.train()(x) == 0).any(), "train() switches dropping back on"


def test_p_zero_is_the_identity_in_training():
    layer = nn.Dropout(0.0)
    x = _inputs((3, 4))
    np.testing.assert_array_equal(layer(x), x)
    g = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(g), g)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_input_dtype(dtype):
    layer = nn.Dropout(0.3, rng=0)
    out = layer(_inputs((5, 5)).astype(dtype))
    assert out.dtype == dtype and layer.backward(np.ones((5, 5), dtype)).dtype == dtype


def test_the_reference_forwards_refuse_a_random_mask():
    with pytest.raises(ValueError, match=r"Dropout\(p=0.5\): the reference forwards are defined for p=0 or eval"):
        registry.tensor_forward(nn.Dropout(0.5))
    x = _inputs((2, 3))
    np.testing.assert_array_equal(registry.tensor_forward(nn.Dropout(0.5).eval())(x), x)


def test_model_files_record_p():
    rebuilt = build_model([registry.layer_config(nn.Dropout(0.25))])[0]
    assert isinstance(rebuilt, nn.Dropout) and rebuilt.p == 0.25 and repr(rebuilt) == "Dropout(p=0.25)"
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\), got 1.0"):
        build_model([{"type": "Dropout", "p": 1.0}])


@pytest.mark.parametrize("p", [-0.1, 1, 1.5, float("nan"), "0.5", True, None])
def test_bad_p_is_refused(p):
    with pytest.raises(ValueError, match=r"^Dropout: p must be a probability in \[0, 1\), got "):
        nn.Dropout(p)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"Dropout\(p=0.5\) expected floating-point input, got int64"):
        nn.Dropout(0.5)(np.ones((2, 2), np.int64))
    layer = nn.Dropout(0.5)
    layer(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"backward expected grad_output of shape \(2, 3\), got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))
