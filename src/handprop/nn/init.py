"""Weight initialisers, in place, PyTorch's formulas for handprop's weight layouts.

handprop stores a Linear weight as (in_features, out_features), so fan_in is ``shape[0]`` and
fan_out is ``shape[1]`` (PyTorch's (out, in) layout has them the other way round). A Conv2d
weight is (out_channels, in_channels, kh, kw) exactly as PyTorch's, so there fan_in is
``shape[1] * kh * kw`` and fan_out ``shape[0] * kh * kw``.
Every draw goes through a ``numpy.random.Generator``: pass ``rng=`` or seed with
``handprop.manual_seed``.
"""
from __future__ import annotations

import math

import numpy as np

from .._random import resolve_rng
from .module import Parameter

_LINEAR_LIKE = ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity: relu sqrt(2), tanh 5/3, leaky_relu sqrt(2/(1+a^2))."""
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
                     f"{', '.join(_LINEAR_LIKE + ('tanh', 'relu', 'leaky_relu'))}")


def fans(array: np.ndarray) -> tuple[int, int]:
    """(fan_in, fan_out): of a Linear weight (in, out), of a convolution weight (out, in, *kernel)
    (each times the kernel size); a 1-D array is its own fan_in and fan_out."""
    if array.ndim < 1:
        raise ValueError(f"fans: expected at least a 1-D weight, got shape {array.shape}")
    if array.ndim == 1:
        return array.shape[0], array.shape[0]
    if array.ndim == 2:
        return array.shape[0], array.shape[1]
    receptive = math.prod(array.shape[2:])
    return array.shape[1] * receptive, array.shape[0] * receptive


def _array(t: np.ndarray | Parameter) -> np.ndarray:
    return t.data if isinstance(t, Parameter) else t


def _fan(array: np.ndarray, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fans(array)[0 if mode == "fan_in" else 1]


def uniform_(t: np.ndarray | Parameter, low: float = 0.0, high: float = 1.0, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Fill with U(low, high)."""
    a = _array(t)
    draw = resolve_rng(rng).random(a.shape, dtype=np.float64)
    a[...] = draw * (high - low) + low
    return a


def normal_(t: np.ndarray | Parameter, mean: float = 0.0, std: float = 1.0, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Fill with N(mean, std^2)."""
    a = _array(t)
    a[...] = resolve_rng(rng).standard_normal(a.shape, dtype=np.float64) * std + mean
    return a


def zeros_(t: np.ndarray | Parameter) -> np.ndarray:
    """Fill with zeros."""
    a = _array(t)
    a.fill(0)
    return a


def kaiming_uniform_(t: np.ndarray | Parameter, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", rng: np.random.Generator | int | None = None) -> np.ndarray:
    """He et al. (2015), uniform: bound = gain * sqrt(3 / fan)."""
    arr = _array(t)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(arr, mode))
    return uniform_(arr, -bound, bound, rng=rng)


def kaiming_normal_(t: np.ndarray | Parameter, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", rng: np.random.Generator | int | None = None) -> np.ndarray:
    """He et al. (2015), normal: std = gain / sqrt(fan)."""
    arr = _array(t)
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(arr, mode))
    return normal_(arr, 0.0, std, rng=rng)


def xavier_uniform_(t: np.ndarray | Parameter, gain: float = 1.0, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Glorot & Bengio (2010), uniform: bound = gain * sqrt(6 / (fan_in + fan_out))."""
    arr = _array(t)
    fan_in, fan_out = fans(arr)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(arr, -bound, bound, rng=rng)


def xavier_normal_(t: np.ndarray | Parameter, gain: float = 1.0, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Glorot & Bengio (2010), normal: std = gain * sqrt(2 / (fan_in + fan_out))."""
    arr = _array(t)
    fan_in, fan_out = fans(arr)
    return normal_(arr, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng)
