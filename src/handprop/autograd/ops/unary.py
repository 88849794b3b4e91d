"""Elementwise math and activations: exp, log, sqrt, abs, erf, relu, leaky_relu, tanh, sigmoid, clamp.

The forward values come from ``nn.functional`` (and ``nn.special``), where the hand-written
layers use them too; the backward multiplies the output gradient by the local derivative, saved
from the forward (the input, or the output when the derivative is cheaper from it).
Functions are named after their Tensor methods, so ``abs`` shadows the builtin here.
"""
from __future__ import annotations

import math

import numpy as np

from ...nn import functional as F
from ...nn import special
from ..engine import _unary
from ..tensor import Tensor

_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


def exp(x: Tensor) -> Tensor:
    """e ** x."""
    out = np.exp(x.data)
    return _unary(x, out, lambda g: g * out, "ExpBackward")


def log(x: Tensor) -> Tensor:
    """Natural logarithm."""
    a = x.data
    return _unary(x, np.log(a), lambda g: g / a, "LogBackward")


def sqrt(x: Tensor) -> Tensor:
    """Square root."""
    out = np.sqrt(x.data)
    return _unary(x, out, lambda g: g / (2 * out), "SqrtBackward")


def abs(x: Tensor) -> Tensor:
    """|x|; the gradient at 0 is 0 (``sign``), as PyTorch."""
    a = x.data
    return _unary(x, np.abs(a), lambda g: g * np.sign(a), "AbsBackward")


def erf(x: Tensor) -> Tensor:
    """The error function (``nn.special.erf``); its derivative is 2/sqrt(pi) exp(-x^2)."""
    a = x.data
    return _unary(x, special.erf(a), lambda g: g * (_TWO_OVER_SQRT_PI * np.exp(-a * a)), "ErfBackward")


def relu(x: Tensor) -> Tensor:
    """max(x, 0); the gradient passes where x > 0."""
    a = x.data
    return _unary(x, F.relu(a), lambda g: g * (a > 0), "ReluBackward")


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else ``negative_slope * x``."""
    a = x.data
    slope = a.dtype.type(negative_slope)
    return _unary(x, F.leaky_relu(a, negative_slope), lambda g: np.where(a > 0, g, g * slope),
                  "LeakyReluBackward")


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent; its derivative 1 - tanh^2 comes from the output."""
    out = F.tanh(x.data)
    return _unary(x, out, lambda g: g * (1 - out * out), "TanhBackward")


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e ** -x); its derivative s (1 - s) comes from the output."""
    out = F.sigmoid(x.data)
    return _unary(x, out, lambda g: g * out * (1 - out), "SigmoidBackward")


def clamp(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """Clip into [min, max]; the gradient passes where min <= x <= max (as PyTorch)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    a = x.data
    out = np.clip(a, min, max)

    def backward(g):
        inside = np.ones(a.shape, dtype=bool)
        if min is not None:
            inside &= a >= min
        if max is not None:
            inside &= a <= max
        return g * inside
    return _unary(x, out, backward, "ClampBackward")


#: The Tensor methods defined here (``ops/__init__.py`` attaches them).
METHODS = {
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "erf": erf, "relu": relu,
    "leaky_relu": leaky_relu, "tanh": tanh, "sigmoid": sigmoid, "clamp": clamp,
}
