"""The maths of every layer and loss as pure NumPy functions; modules and autograd call these.

Shapes follow the notebooks: a batch is (N, features), ``linear`` weights are (in, out).
"""
from __future__ import annotations

import numpy as np


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``x @ weight + bias`` with weight (in, out), as in the notebooks' ``lin``."""
    out = x @ weight
    if bias is not None:
        out += bias
    return out


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0)


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """x where x > 0, else negative_slope * x."""
    return np.where(x > 0, x, x * x.dtype.type(negative_slope))


def general_relu(x: np.ndarray, leak: float | None = None, sub: float | None = None,
                 maxv: float | None = None) -> np.ndarray:
    """fast.ai's GeneralRelu: leaky (or plain) ReLU, shifted down by ``sub``, clamped at ``maxv``."""
    out = leaky_relu(x, leak) if leak else relu(x)
    if sub is not None:
        out -= out.dtype.type(sub)
    if maxv is not None:
        np.minimum(out, out.dtype.type(maxv), out=out)
    return out


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), from e = exp(-|x|) <= 1 so it never overflows.

    1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0: each is accurate to rounding, including
    the far negative tail ((1 + tanh(x/2)) / 2 cancels there: float32 sigmoid(-10) was off by 2e-4).
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """log(sum(exp(x))) along ``axis``, shifted by the max so large logits do not overflow.

    log Σ exp(x_j) = m + log Σ exp(x_j - m), with m = max_j x_j (the notebooks' LogSumExp trick).
    """
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # an all -inf row stays -inf instead of becoming nan
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x - logsumexp(x): log-probabilities, stable for any logit magnitude."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(log_softmax(x)): probabilities that sum to 1 along ``axis``."""
    return np.exp(log_softmax(x, axis=axis))


def one_hot(target: np.ndarray, num_classes: int, dtype: np.dtype | type = np.float32,
            on: float = 1.0, off: float = 0.0) -> np.ndarray:
    """(N,) integer labels -> (N, num_classes) with ``on`` at the label and ``off`` elsewhere.

    EPFL practical 3 uses on=0.9, off=-0.9 (targets in {-1, +1} scaled by 0.9).
    """
    target = np.asarray(target)
    _check_class_targets(target, num_classes, "one_hot")
    out = np.full((target.shape[0], num_classes), off, dtype=dtype)
    out[np.arange(target.shape[0]), target] = on
    return out


def nll(log_probs: np.ndarray, target: np.ndarray, reduction: str = "mean") -> float:
    """Negative log-likelihood of integer targets: -log_probs[range(N), target], reduced."""
    picked = log_probs[np.arange(log_probs.shape[0]), target]
    return float(-picked.sum() / (log_probs.shape[0] if reduction == "mean" else 1))


def cross_entropy(logits: np.ndarray, target: np.ndarray, reduction: str = "mean") -> float:
    """nll(log_softmax(logits), target): the fused classification loss."""
    return nll(log_softmax(logits), target, reduction)


def mse(pred: np.ndarray, target: np.ndarray, reduction: str = "mean") -> float:
    """Squared error summed or averaged over every element (PyTorch's ``mse_loss``)."""
    diff = pred - target
    total = float(np.vdot(diff, diff))
    return total / diff.size if reduction == "mean" else total


def _check_class_targets(target: np.ndarray, num_classes: int, who: str) -> None:
    """Integer class labels in [0, num_classes), or a ValueError naming ``who``."""
    if not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"{who} expected integer class targets, got dtype {target.dtype}")
    if target.ndim != 1:
        raise ValueError(f"{who} expected targets of shape (N,), got {target.shape}")
    if target.size and (target.min() < 0 or target.max() >= num_classes):
        bad = target[(target < 0) | (target >= num_classes)][0]
        raise ValueError(f"{who} expected class targets in [0, {num_classes}), got {bad}")
