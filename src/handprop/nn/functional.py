"""The maths of every layer and loss as pure NumPy functions; modules and autograd call these.

Shapes follow the notebooks: a batch is (N, features), ``linear`` weights are (in, out).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .special import erf


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``x @ weight + bias`` with weight (in, out), as in the notebooks' ``lin``."""
    out = x @ weight
    if bias is not None:
        out += bias
    return out


#: Above this many rows :func:`sum_rows` sums in two levels.
SUM_ROWS_ONE_PASS = 4096


def sum_rows(x: np.ndarray) -> np.ndarray:
    """``x.sum(axis=0)`` of an (N, F) array, as ``ones @ x``: a BLAS gemv, 2-5x faster than a
    reduction over axis 0, which NumPy runs row by row (512 x 50: 2.4 us against 11, 50176 x 16
    1.5 ms against 0.13); the bias gradient of a batch, a BatchNorm's statistics.

    One gemv adds the N rows one after the other, so in float32 its rounding grows with N (3e-6
    relative for 50176 rows, as much as NumPy's reduction: a BatchNorm's variance that far off
    moves a CNN's loss by 1e-5). Past :data:`SUM_ROWS_ONE_PASS` rows it sums in two levels of
    about sqrt(N) terms each, as ``(B, k * F)`` and ``(k, F)`` gemvs over the same memory
    (2e-7 on those 50176 rows, at the same speed)."""
    n = x.shape[0]
    if n <= SUM_ROWS_ONE_PASS or not x.flags.c_contiguous:
        return _ones(n, x.dtype) @ x
    b = math.isqrt(n)
    k = n // b
    partial = (_ones(b, x.dtype) @ x[:b * k].reshape(b, -1)).reshape(k, -1)  # partial[j] = sum of rows j, j + k, ...
    return _ones(k, x.dtype) @ partial + _ones(n - b * k, x.dtype) @ x[b * k:]


@lru_cache(maxsize=16)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    ones = np.ones(n, dtype)
    ones.flags.writeable = False  # shared between calls
    return ones


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


#: GELU's tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
GELU_TANH_SCALE, GELU_TANH_CUBIC = float(np.sqrt(2 / np.pi)), 0.044715


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """x * Phi(x) with Phi the standard normal CDF; ``approximate='tanh'`` uses the tanh formula."""
    half = x.dtype.type(0.5)
    if approximate == "tanh":
        return half * x * (1 + np.tanh(x.dtype.type(GELU_TANH_SCALE) * (x + x.dtype.type(GELU_TANH_CUBIC) * x ** 3)))
    return half * x * (1 + erf(x * x.dtype.type(np.sqrt(0.5))))


def gelu_grad(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """d gelu / dx: Phi(x) + x phi(x) (phi the normal density), or the tanh formula's derivative."""
    half = x.dtype.type(0.5)
    if approximate == "tanh":
        c, k = x.dtype.type(GELU_TANH_SCALE), x.dtype.type(GELU_TANH_CUBIC)
        t = np.tanh(c * (x + k * x ** 3))
        return half * (1 + t) + half * x * (1 - t * t) * c * (1 + 3 * k * x * x)
    return half * (1 + erf(x * x.dtype.type(np.sqrt(0.5)))) + x * np.exp(-half * x * x) * x.dtype.type(1 / np.sqrt(2 * np.pi))


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x) (swish)."""
    return x * sigmoid(x)


def silu_grad(x: np.ndarray) -> np.ndarray:
    """d silu / dx = s (1 + x (1 - s)) with s = sigmoid(x)."""
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


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


def _reduce(total: float, n: int, reduction: str) -> float:
    """A summed loss as 'sum' or as 'mean' over ``n`` terms (nan for an empty batch, as PyTorch)."""
    if reduction == "sum":
        return total
    return total / n if n else float("nan")


def nll(log_probs: np.ndarray, target: np.ndarray, reduction: str = "mean") -> float:
    """Negative log-likelihood of integer targets: -log_probs[range(N), target], reduced."""
    target = check_class_scores(log_probs, target, "nll")
    return _reduce(_nll_sum(log_probs, target), len(target), reduction)


def _nll_sum(log_probs: np.ndarray, target: np.ndarray) -> float:
    """-sum_i log_probs[i, target_i] for validated arguments."""
    return -float(np.add.reduce(log_probs[np.arange(log_probs.shape[0]), target], dtype=np.float64))


def softmax_cross_entropy(logits: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Fused cross-entropy: the *summed* loss and what its gradient needs, in one pass.

    With e = exp(x - max) (the logsumexp shift, so logits of 1e4 cannot overflow),
    loss_i = log(sum_j e_ij) - (x - max)_i,t_i. ``e`` is kept transposed, (C, N): the max and
    the sum over the short class axis are then reductions over contiguous rows, 2-10x faster
    than along axis 1 of an (N, 10) array. Returns (sum of loss_i, e, sums, the targets' flat
    positions in ``e``): what :func:`softmax_cross_entropy_grad` needs. Validates nothing:
    :func:`cross_entropy` and ``CrossEntropyLoss`` check their arguments first.
    """
    e = logits.T.copy()
    e -= np.maximum.reduce(e, axis=0, initial=-np.inf)
    positions = _flat_index(target, e.shape[1])
    picked = e.reshape(-1)[positions]
    np.exp(e, out=e)
    sums = np.add.reduce(e, axis=0)
    return float(np.add.reduce(np.log(sums)) - np.add.reduce(picked)), e, sums, positions


def softmax_cross_entropy_grad(e: np.ndarray, sums: np.ndarray, positions: np.ndarray, scale: float) -> np.ndarray:
    """d(scale * summed loss)/dlogits = scale * (softmax - onehot), written over ``e``.

    ``e``, ``sums`` and ``positions`` come from :func:`softmax_cross_entropy` (``e`` is consumed).
    Returns the (N, C) transpose of the (C, N) buffer: an F-contiguous view, no copy.
    """
    e *= e.dtype.type(scale) / sums
    e.reshape(-1)[positions] -= e.dtype.type(scale)
    return e.T


def _flat_index(target: np.ndarray, n: int) -> np.ndarray:
    """Flat positions of ``[target[i], i]`` in a C-contiguous (C, n) array: one index array for
    NumPy's fancy indexing instead of two (64 x 10: 1.7 against 2.6 us for the update)."""
    return target.astype(np.intp, copy=False) * n + np.arange(n)  # (uint8 labels would wrap)


def cross_entropy(logits: np.ndarray, target: np.ndarray, reduction: str = "mean") -> float:
    """nll(log_softmax(logits), target), computed fused (see :func:`softmax_cross_entropy`)."""
    target = check_class_scores(logits, target, "cross_entropy")
    return _reduce(softmax_cross_entropy(logits, target)[0], len(target), reduction)


def mse_residual(output: np.ndarray, target: np.ndarray, who: str = "mse") -> np.ndarray:
    """output - target for equal shapes; the notebooks' (N, 1) output against an (N,) target is
    the one exception (the trailing 1 is squeezed). Nothing else broadcasts: ValueError."""
    target = np.asarray(target)
    column = output.ndim == 2 and output.shape[1] == 1
    pred = output[:, 0] if column and target.shape == output.shape[:1] else output
    if pred.shape != target.shape:
        hint = f" (or ({output.shape[0]},) for an (N, 1) output)" if column else ""
        raise ValueError(f"{who} expected target of shape {output.shape}{hint}, got {target.shape}")
    return pred - target.astype(output.dtype, copy=False)


def mse(output: np.ndarray, target: np.ndarray, reduction: str = "mean") -> float:
    """Squared error summed or averaged over every element (PyTorch's ``mse_loss``)."""
    diff = mse_residual(output, target)
    return _reduce(float(np.vdot(diff, diff)), diff.size, reduction)


def check_class_scores(output: np.ndarray, target: np.ndarray, who: str) -> np.ndarray:
    """(N, C) scores with (N,) integer targets in [0, C), or a ValueError naming ``who``."""
    if output.ndim != 2:
        raise ValueError(f"{who} expected output of shape (N, C), got {output.shape}")
    target = np.asarray(target)
    if target.shape != (output.shape[0],):
        raise ValueError(f"{who} expected target of shape ({output.shape[0]},) for output "
                         f"{output.shape}, got {target.shape}")
    _check_class_targets(target, output.shape[1], who)
    return target


def _check_class_targets(target: np.ndarray, num_classes: int, who: str) -> None:
    """Integer class labels in [0, num_classes), or a ValueError naming ``who``."""
    if target.dtype.kind not in "iu":  # signed or unsigned integers (np.issubdtype, 10x cheaper)
        raise ValueError(f"{who} expected integer class targets, got dtype {target.dtype}")
    if target.ndim != 1:
        raise ValueError(f"{who} expected targets of shape (N,), got {target.shape}")
    if target.size and (target.min() < 0 or target.max() >= num_classes):
        bad = target[(target < 0) | (target >= num_classes)][0]
        raise ValueError(f"{who} expected class targets in [0, {num_classes}), got {bad}")
