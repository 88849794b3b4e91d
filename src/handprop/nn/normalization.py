"""The maths BatchNorm and LayerNorm share: normalising over some axes, and its backward.

Both layers compute xhat = (x - mean) / sqrt(var + eps) with the biased variance over their
axes (the batch for BatchNorm, the trailing features for LayerNorm), then an affine map.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def normalize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(xhat, inv_std, mean, var)``: x normalised over ``axes`` and its statistics (dims kept).

    The variance is the biased one, from the centred values (two passes: no cancellation).
    """
    mean = np.mean(x, axis=axes, keepdims=True)
    xhat = x - mean
    var = np.mean(np.square(xhat), axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat *= inv_std
    return xhat, inv_std, mean, var


def normalize_backward(grad_xhat: np.ndarray, xhat: np.ndarray, scale: np.ndarray,
                       mean_grad: np.ndarray, mean_grad_xhat: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """dL/dx = scale * (g - mean(g) - xhat * mean(g * xhat)), g = dL/dxhat, means over the axes.

    ``scale`` is 1/std (times any factor constant over the axes, e.g. BatchNorm's weight, folded
    in with g taken before it). The two means are the gradient through the mean and through
    the variance; the caller passes them, as BatchNorm has them already from its parameter grads.
    Four passes into one array: ``out`` (xhat's shape, may be a scratch array of the caller's) or a new one.
    """
    grad = np.multiply(xhat, mean_grad_xhat, out=out)
    np.subtract(grad_xhat, grad, out=grad)
    grad -= mean_grad
    grad *= scale
    return grad


def random_affine(make: Callable[[], object], seed: int) -> Callable[[], object]:
    """A trust-case factory: ``make()`` with its weight and bias drawn at random (float64), so
    the cases check the affine part too (ones and zeros would hide a missing weight)."""
    def made():
        layer = make()
        rng = np.random.default_rng(seed)
        layer.weight.data[...] = 1 + 0.5 * rng.standard_normal(layer.weight.shape)
        layer.bias.data[...] = 0.5 * rng.standard_normal(layer.bias.shape)
        return layer
    return made


def check_eps(who: str, eps: float) -> float:
    """``eps`` as a float, or a ValueError naming ``who``: it must be a positive finite number."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) \
            or not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"{who}: eps must be a positive number, got {eps!r}")
    return float(eps)
