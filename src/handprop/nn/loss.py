"""Losses (criteria, Torch7's name): their own type, not layers.

A loss is called as ``loss = crit(output, target)`` and returns a Python float;
``crit.backward()`` (no argument: a loss is where backpropagation starts) then returns
dLoss/doutput, scaled by the reduction. A loss has no parameters and cannot sit inside a
``Sequential``.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .module import ForwardCache
from .registry import Arg, Case, register

_REDUCTIONS = ("mean", "sum")


class Loss(ForwardCache):
    """Base class of the criteria: ``forward(output, target) -> float`` and ``backward() -> dL/doutput``."""

    def __call__(self, output: np.ndarray, target: np.ndarray) -> float:
        return self.forward(output, target)

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def parameters(self) -> list:
        """A loss has none (so code that walks parameters may treat it like a layer)."""
        return []

    def train(self, mode: bool = True) -> Loss:
        """In eval mode (``mode=False``) a call keeps nothing for backward, as a layer's."""
        self.training = mode
        self.__dict__.pop("_cache", None)
        return self

    def eval(self) -> Loss:
        return self.train(False)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class _ReducedLoss(Loss):
    """A loss summed or averaged over the batch: validates ``reduction`` and the output."""

    def __init__(self, reduction: str = "mean"):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def _check_output(self, output: np.ndarray) -> None:
        if not isinstance(output, np.ndarray) or output.dtype.kind != "f":
            raise ValueError(f"{type(self).__name__} expected a floating-point output array, "
                             f"got {getattr(output, 'dtype', type(output).__name__)}")

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


_REDUCTION_ARG = (Arg("reduction", str, choices=_REDUCTIONS),)


def _reduce(total, reduction: str):
    """A Tensor of per-element losses reduced as ``reduction`` says (the reference forwards)."""
    return total.mean() if reduction == "mean" else total.sum()


def _mse_reference(crit: MSELoss):
    def mse(output, target: np.ndarray):
        target = np.asarray(target)
        column = output.ndim == 2 and output.shape[1] == 1 and target.shape == output.shape[:1]
        pred = output[:, 0] if column else output  # the notebooks' (N, 1) output vs (N,) target
        return _reduce((pred - target.astype(output.dtype)) ** 2, crit.reduction)
    return mse


def _mse_torch(torch, crit: MSELoss):
    def mse(output, target):
        t = torch.as_tensor(np.asarray(target), dtype=output.dtype)
        column = output.ndim == 2 and output.shape[1] == 1 and t.shape == output.shape[:1]
        return torch.nn.functional.mse_loss(output[:, 0] if column else output, t, reduction=crit.reduction)
    return mse


def _normal_target(*shape: int):
    return lambda rng: rng.standard_normal(shape)


def _labels(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 5, size=6)


@register(args=_REDUCTION_ARG, tensor=_mse_reference, torch=_mse_torch, loss="mse", cases=[
    Case("MSELoss(mean)", (6, 3), target=_normal_target(6, 3)),
    Case("MSELoss(sum)", (6, 3), {"reduction": "sum"}, target=_normal_target(6, 3)),
    Case("MSELoss((N,1) vs (N,))", (6, 1), target=_normal_target(6))])
class MSELoss(_ReducedLoss):
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


def _nll_reference(crit):
    def nll(log_probs, target: np.ndarray):
        picked = log_probs[np.arange(log_probs.shape[0]), np.asarray(target)]
        return -_reduce(picked, crit.reduction)
    return nll


@register(args=_REDUCTION_ARG, loss="ce",
          tensor=lambda crit: lambda logits, target: _nll_reference(crit)(logits.log_softmax(axis=-1), target),
          torch=lambda torch, crit: lambda output, target: torch.nn.functional.cross_entropy(
              output, torch.as_tensor(np.asarray(target)), reduction=crit.reduction),
          cases=[Case("CrossEntropy(mean)", (6, 5), scale=3, target=_labels),
                 Case("CrossEntropy(sum)", (6, 5), {"reduction": "sum"}, scale=3, target=_labels)])
class CrossEntropyLoss(_ReducedLoss):
    """log_softmax then NLL, for (N, C) logits and (N,) integer class targets.

    Computed through logsumexp, so logits of 1e4 do not overflow. The backward is the fused
    form: d(-log softmax(x)_t)/dx = softmax(x) - onehot(t), divided by N for 'mean'.
    """

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        self._check_output(output)
        target = F.check_class_scores(output, target, "CrossEntropyLoss")
        total, e, sums, positions = F.softmax_cross_entropy(output, target)
        self._save(e, sums, positions)
        return F._reduce(total, len(target), self.reduction)

    def backward(self) -> np.ndarray:
        e, sums, positions = self._saved()
        n = len(positions)
        return F.softmax_cross_entropy_grad(e, sums, positions, 1.0 / n if self.reduction == "mean" and n else 1.0)


def _log_probs(rng: np.random.Generator) -> np.ndarray:
    return F.log_softmax(rng.standard_normal((6, 5)))


@register(args=_REDUCTION_ARG, tensor=_nll_reference,
          torch=lambda torch, crit: lambda output, target: torch.nn.functional.nll_loss(
              output, torch.as_tensor(np.asarray(target)), reduction=crit.reduction),
          cases=[Case("NLLLoss(mean)", (6, 5), make_input=_log_probs, target=_labels),
                 Case("NLLLoss(sum)", (6, 5), {"reduction": "sum"}, make_input=_log_probs, target=_labels)])
class NLLLoss(_ReducedLoss):
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
