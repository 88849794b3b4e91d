"""What BatchNorm and LayerNorm share: the normalisation maths and the gradient contract."""
from __future__ import annotations

import numpy as np
import pytest

from handprop import nn
from handprop.nn.normalization import normalize, normalize_backward

LAYERS = {"BatchNorm2d": (lambda: nn.BatchNorm2d(2, dtype=np.float64), (3, 2, 2, 2)),
          "LayerNorm": (lambda: nn.LayerNorm((2, 3), dtype=np.float64), (4, 2, 3))}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradients_accumulate_and_input_grad_false_still_fills_them(name):
    make, shape = LAYERS[name]
    layer = make()
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
    layer(x)
    assert layer.backward(g, input_grad=False) is None
    once = [p.grad.copy() for p in layer.parameters()]
    assert all(o.any() for o in once)
    layer(x)
    layer.backward(g)
    for p, o in zip(layer.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * o, rtol=1e-14)


def test_normalize_returns_the_biased_statistics_and_a_fresh_array():
    x = np.random.default_rng(0).standard_normal((5, 3, 4)) + 3
    xhat, inv_std, mean, var = normalize(x, (0, 2), 1e-5)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2), keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(var, x.var(axis=(0, 2), keepdims=True), rtol=1e-13)
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(var + 1e-5), rtol=1e-15)
    np.testing.assert_allclose(xhat, (x - mean) * inv_std, rtol=1e-13)
    assert not np.shares_memory(xhat, x)


def test_normalize_backward_is_orthogonal_to_what_normalising_removes():
    """A shift of x and a rescaling about its mean leave xhat unchanged: dL/dx must be
    orthogonal to both, over the normalised axes (sum(dx) = 0, sum(dx * xhat) = 0)."""
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal((6, 7)), rng.standard_normal((6, 7))
    xhat, inv_std, _, _ = normalize(x, (1,), 0.0)
    dx = normalize_backward(g, xhat, inv_std, g.mean(axis=1, keepdims=True), (g * xhat).mean(axis=1, keepdims=True))
    np.testing.assert_allclose(dx.sum(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose((dx * xhat).sum(axis=1), 0, atol=1e-12)
