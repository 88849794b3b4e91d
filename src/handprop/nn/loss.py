"""Losses (criteria) and LogSoftmax.

A loss is called as ``loss = crit(output, target)`` and returns a Python float;
``crit.backward()`` then returns dLoss/doutput, scaled by the reduction.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .module import Module

_REDUCTIONS = ("mean", "sum")


class Loss(Module):
    """Base class of the criteria: validates ``reduction`` and the (output, target) pair."""

    def __init__(self, reduction: str = "mean"):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def __call__(self, output: np.ndarray, target: np.ndarray) -> float:
        return self.forward(output, target)

    def _check_output(self, output: np.ndarray) -> None:
        if not isinstance(output, np.ndarray) or not np.issubdtype(output.dtype, np.floating):
            raise ValueError(f"{type(self).__name__} expected a floating-point output array, "
                             f"got {getattr(output, 'dtype', type(output).__name__)}")

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(Loss):
    """Squared error over every element, averaged ('mean') or summed ('sum').

    Shapes must match; the notebooks' (N, 1) output against (N,) target is the one exception
    (the trailing 1 is squeezed). Nothing else broadcasts.
    """

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        self._check_output(output)
        diff = F.mse_residual(output, target, "MSELoss")
        self._save(diff, output.shape)
        return F._reduce(float(np.vdot(diff, diff)), diff.size, self.reduction)

    def backward(self) -> np.ndarray:
        diff, shape = self._saved()
        scale = 2.0 / diff.size if self.reduction == "mean" else 2.0
        return (diff * diff.dtype.type(scale)).reshape(shape)


class CrossEntropyLoss(Loss):
    """log_softmax then NLL, for (N, C) logits and (N,) integer class targets.

    Computed through logsumexp, so logits of 1e4 do not overflow. The backward is the fused
    form: d(-log softmax(x)_t)/dx = softmax(x) - onehot(t), divided by N for 'mean'.
    """

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        self._check_output(output)
        target = F.check_class_scores(output, target, "CrossEntropyLoss")
        total, e, sums = F.softmax_cross_entropy(output, target)
        self._save(e, sums, target)
        return F._reduce(total, len(target), self.reduction)

    def backward(self) -> np.ndarray:
        e, sums, target = self._saved()
        n = len(target)
        return F.softmax_cross_entropy_grad(e, sums, target, 1.0 / n if self.reduction == "mean" and n else 1.0)


class NLLLoss(Loss):
    """Negative log-likelihood of (N, C) log-probabilities at (N,) integer targets."""

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        self._check_output(output)
        target = F.check_class_scores(output, target, "NLLLoss")
        self._save(output.shape, output.dtype, target)
        return F._reduce(F._nll_sum(output, target), len(target), self.reduction)

    def backward(self) -> np.ndarray:
        shape, dtype, target = self._saved()
        grad = np.zeros(shape, dtype=dtype)
        grad[np.arange(shape[0]), target] = -1.0 / shape[0] if self.reduction == "mean" and shape[0] else -1.0
        return grad


class LogSoftmax(Module):
    """log_softmax along the last axis; backward g - softmax * sum(g)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = F.log_softmax(x)
        self._save(out)
        return out

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (out,) = self._saved()
        if grad_output.shape != out.shape:
            raise ValueError(f"LogSoftmax.backward expected grad_output of shape {out.shape}, got {grad_output.shape}")
        if not input_grad:
            return None
        return grad_output - np.exp(out) * grad_output.sum(axis=-1, keepdims=True)
