"""Reductions over axes: sum, mean, var, max, min, logsumexp, and the softmax pair.

``axis`` is an int, a tuple of ints or None (all axes), as in NumPy. The backward of a
reduction broadcasts the output gradient back over the reduced axes (``_expand``).
Functions are named after their Tensor methods, so ``sum``, ``max``, ``min`` shadow the builtins here.
"""
from __future__ import annotations

import numpy as np

from ...nn import functional as F
from ..broadcast import _expand, _keep
from ..engine import _unary
from ..tensor import Tensor

def sum(x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (int, tuple or None for all)."""
    a = x.data
    out = np.sum(a, axis=axis, keepdims=keepdims)
    return _unary(x, out, lambda g: _expand(g, axis, keepdims, a.shape), "SumBackward")


def mean(x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (int, tuple or None for all)."""
    a = x.data
    out = np.mean(a, axis=axis, keepdims=keepdims)
    n = a.size // np.size(out) if a.size else 0  # elements per mean
    scale = 1.0 / n if n else np.nan
    return _unary(x, out, lambda g: _expand(g * scale, axis, keepdims, a.shape), "MeanBackward")


def var(x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance over ``axis``: mean((x - mean)^2) * n / (n - ddof), NumPy's convention (ddof=0 is
    the biased variance BatchNorm normalises with, ddof=1 the unbiased one it tracks)."""
    a = x.data
    centred = a - np.mean(a, axis=axis, keepdims=True)
    out = np.var(a, axis=axis, keepdims=keepdims, ddof=ddof)
    n = a.size // np.size(out) if a.size else 0  # elements per variance
    scale = 2.0 / (n - ddof) if n > ddof else np.nan
    # d var / dx_i = 2 (x_i - mean) / (n - ddof): the mean's own dependence on x_i sums to zero
    return _unary(x, out, lambda g: _keep(g, axis, a.shape, keepdims) * (centred * scale), "VarBackward")


def max(x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``; the gradient is split evenly among tied maxima (``torch.amax``)."""
    return _extreme(x, np.max, axis, keepdims, "MaxBackward")


def min(x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Minimum over ``axis``; the gradient is split evenly among tied minima (``torch.amin``)."""
    return _extreme(x, np.min, axis, keepdims, "MinBackward")


def _extreme(x: Tensor, fn, axis, keepdims: bool, name: str) -> Tensor:
    a = x.data
    out = fn(a, axis=axis, keepdims=keepdims)

    def backward(g):
        hit = a == _keep(out, axis, a.shape, keepdims)
        share = hit / hit.sum(axis=axis, keepdims=True)
        return _expand(g, axis, keepdims, a.shape) * share.astype(a.dtype, copy=False)
    return _unary(x, out, backward, name)


def logsumexp(x: Tensor, axis=-1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``axis``, computed stably (shifted by the max)."""
    a = x.data
    lse = F.logsumexp(a, axis=axis, keepdims=True)
    out = lse if keepdims else np.squeeze(lse, axis=axis)
    # d lse / dx = softmax(x) = exp(x - lse)
    return _unary(x, out, lambda g: _keep(g, axis, a.shape, keepdims) * np.exp(a - lse),
                  "LogsumexpBackward")


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) over ``axis``: log-probabilities."""
    out = F.log_softmax(x.data, axis=axis)
    # d/dx: g - softmax(x) * sum(g)
    return _unary(x, out, lambda g: g - np.exp(out) * g.sum(axis=axis, keepdims=True),
                  "LogSoftmaxBackward")


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) over ``axis``."""
    out = F.softmax(x.data, axis=axis)
    return _unary(x, out, lambda g: out * (g - (g * out).sum(axis=axis, keepdims=True)),
                  "SoftmaxBackward")


#: The Tensor methods defined here (``ops/__init__.py`` attaches them).
METHODS = {
    "sum": sum, "mean": mean, "var": var, "max": max, "min": min,
    "logsumexp": logsumexp, "log_softmax": log_softmax, "softmax": softmax,
}
