"""The learning-rate range test (Smith 2015; fast.ai's ``lr_find``).

Train on successive batches while the learning rate grows exponentially from ``start_lr`` to
``end_lr`` over ``num_it`` batches; stop early once the smoothed loss exceeds ``stop_factor``
times its minimum or stops being finite. Afterwards the weights, buffers, gradients, optimiser
state and training modes are exactly what they were (random generators, the data loader's
shuffling and dropout's masks, move on, as in fast.ai).

Two smoothings: the stop test needs a running one (a debiased moving average, fast.ai's), which
lags the losses by about ``1 / (1 - SMOOTHING)`` batches; the curve the suggestions are read
from and the plot is a centred moving average instead, so no lag shifts them. The suggestions:
the *steepest* descent, and the middle of the *valley* from the plateau to the minimum (in the
spirit of fast.ai's default since 2021, a rate well inside the region where the loss falls).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .learner import Callback, CancelFitException, Learner

if TYPE_CHECKING:
    from ..nn.module import Module
    from ..optim.optimizer import Optimizer

#: Weight of the running average the stop test uses (debiased, as fast.ai's).
SMOOTHING = 0.98
#: Half-width, in batches, of the centred moving average the suggestions are read from.
HALF_WINDOW = 4


@dataclass(frozen=True)
class LRFindResult:
    """The sweep: learning rates, raw and (centred-average) smoothed losses per batch, the two
    suggestions and why the sweep ended."""

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    steepest: float
    valley: float
    stop_reason: str

    def plot(self, path: str | Path) -> Path:
        """Write the curve (log learning-rate axis) with both suggestions marked, as a PNG."""
        from ..figures import new_figure, save_png

        fig = new_figure(7, 4.5)
        ax = fig.subplots()
        ax.plot(self.lrs, self.losses, color="0.75", linewidth=1, label="loss per batch")
        ax.plot(self.lrs, self.smoothed, color="tab:blue", linewidth=2, label="smoothed loss")
        for lr, name, marker, color in ((self.valley, "valley", "o", "tab:green"),
                                        (self.steepest, "steepest descent", "s", "tab:red")):
            i = int(np.argmin(np.abs(np.log(self.lrs / lr))))
            ax.plot(lr, self.smoothed[i], marker, color=color, markersize=9, label=f"{name}: {lr:.2g}")
        finite = self.smoothed[np.isfinite(self.smoothed)]
        low, high = finite.min(), min(finite.max(), finite[0] * 1.5 if finite[0] > 0 else finite.max())
        margin = 0.05 * (high - low) if high > low else 0.05 * max(abs(high), 1.0)
        ax.set(xscale="log", xlabel="learning rate (log scale)", ylabel="training loss",
               title=f"learning-rate finder ({len(self.lrs)} batches, {self.stop_reason})",
               ylim=(low - margin, high + margin))
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        return save_png(fig, path)


class LRFinder(Callback):
    """Sets the learning rate before each training batch and records the loss (see the module
    docstring); cancels the fit when the sweep is over or the loss has diverged."""

    order = 50  # last among the before_batch callbacks: its rate is the one used

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
                 stop_factor: float = 3.0):
        check_sweep(start_lr, end_lr, num_it, stop_factor)
        self.start_lr, self.end_lr, self.num_it, self.stop_factor = start_lr, end_lr, num_it, stop_factor
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.stop_reason = ""

    def before_fit(self) -> None:
        self.average, self.best = 0.0, math.inf

    def before_batch(self) -> None:
        if self.learn.training:
            i = len(self.lrs)
            self.learn.opt.lr = self.start_lr * (self.end_lr / self.start_lr) ** (i / (self.num_it - 1))

    def after_loss(self) -> None:
        if not self.learn.training:
            return
        loss = float(self.learn.loss)
        self.lrs.append(self.learn.opt.lr)
        self.losses.append(loss)
        self.average = SMOOTHING * self.average + (1 - SMOOTHING) * loss
        smoothed = self.average / (1 - SMOOTHING ** len(self.losses))
        if not math.isfinite(smoothed) or smoothed > self.stop_factor * self.best:
            self.stop_reason = ("loss not finite" if not math.isfinite(smoothed) else
                                f"smoothed loss above {self.stop_factor:g}x its minimum")
            raise CancelFitException()
        self.best = min(self.best, smoothed)
        if len(self.lrs) == self.num_it:  # the last rate was tried: no need to take its step
            self.stop_reason = f"reached {self.end_lr:g}"
            raise CancelFitException()


def check_sweep(start_lr: float, end_lr: float, num_it: int, stop_factor: float) -> None:
    """ValueError naming the argument unless 0 < start_lr < end_lr, num_it >= 2, stop_factor > 1."""
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr), ("stop_factor", stop_factor)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"lr_find: {name} must be a finite number > 0, got {value!r}")
    if start_lr >= end_lr:
        raise ValueError(f"lr_find: start_lr ({start_lr:g}) must be below end_lr ({end_lr:g})")
    if isinstance(num_it, bool) or not isinstance(num_it, int) or num_it < 2:
        raise ValueError(f"lr_find: num_it must be an integer >= 2, got {num_it!r}")
    if stop_factor <= 1:
        raise ValueError(f"lr_find: stop_factor must be above 1, got {stop_factor!r}")


def lr_find(learn: Learner, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
            stop_factor: float = 3.0) -> LRFindResult:
    """Run the sweep on ``learn``'s model, optimiser and training data (none of its callbacks),
    then put everything back; see the module docstring."""
    finder = LRFinder(start_lr, end_lr, num_it, stop_factor)
    batches = len(learn.train_dl) if hasattr(learn.train_dl, "__len__") else num_it
    if batches == 0:
        raise ValueError("lr_find: the training data has no batches")
    with _Restored(learn.model, learn.opt):
        Learner(learn.model, learn.loss_func, learn.opt, learn.train_dl, None, [finder]).fit(math.ceil(num_it / batches))
    if len(finder.lrs) < 3:
        raise ValueError(f"lr_find: the loss {finder.stop_reason} after {len(finder.lrs)} batches, from "
                         f"lr {start_lr:g}: nothing to suggest; try a lower start_lr")
    lrs, losses = np.array(finder.lrs), np.array(finder.losses)
    smoothed = centred_average(losses, HALF_WINDOW)
    return LRFindResult(lrs, losses, smoothed, steepest_lr(lrs, smoothed), valley_lr(lrs, smoothed),
                        finder.stop_reason)


def centred_average(values: np.ndarray, half_window: int) -> np.ndarray:
    """The mean of each value's finite neighbours within ``half_window`` (fewer at the ends);
    NaN from the first non-finite value on."""
    n = _finite_prefix(values)
    kernel = np.ones(2 * half_window + 1)
    out = np.full(len(values), np.nan)
    window = slice(half_window, half_window + n)  # "full" convolution, centred, whatever n is
    out[:n] = np.convolve(values[:n], kernel)[window] / np.convolve(np.ones(n), kernel)[window]
    return out


def steepest_lr(lrs: np.ndarray, smoothed: np.ndarray) -> float:
    """The rate where the smoothed loss falls fastest per decade of learning rate."""
    n = _finite_prefix(smoothed)
    slopes = np.diff(smoothed[:n]) / np.diff(np.log10(lrs[:n]))
    return float(lrs[int(np.argmin(slopes))])


def valley_lr(lrs: np.ndarray, smoothed: np.ndarray, plateau: float = 0.9) -> float:
    """The middle (in log learning rate) of the valley: from the last point still on the plateau
    (within ``1 - plateau`` of the whole drop from the highest earlier loss) down to the minimum."""
    losses = smoothed[:_finite_prefix(smoothed)]
    end = int(np.argmin(losses))
    top = losses[:end + 1].max()
    on_plateau = np.flatnonzero(losses[:end + 1] >= losses[end] + plateau * (top - losses[end]))
    return float(lrs[(on_plateau[-1] + end) // 2])


def _finite_prefix(values: np.ndarray) -> int:
    """How many leading values are finite (a sweep stops at its first non-finite loss)."""
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else len(values)


class _Restored:
    """Context manager: on exit, ``model`` and ``opt`` are as they were on entry (weights,
    buffers, gradients, optimiser state and hyperparameters, each module's training mode)."""

    def __init__(self, model: Module, opt: Optimizer):
        self.model, self.opt = model, opt

    def __enter__(self) -> _Restored:
        self.state = self.model.state_dict()
        self.grads = [p.grad.copy() for p in self.model.parameters()]
        self.opt_state = self.opt.state_dict()
        self.modes = [(m, m.training) for m in self.model.modules()]
        return self

    def __exit__(self, *exc: object) -> None:
        self.model.load_state_dict(self.state)
        for p, grad in zip(self.model.parameters(), self.grads):
            p.grad[...] = grad
        for per_param in self.opt.state.values():
            per_param.clear()  # state created during the sweep (Adam's moments on a fresh optimiser)
        self.opt.load_state_dict(self.opt_state)
        self.model.train()  # drops the sweep's forward caches
        for m, training in self.modes:
            m.training = training
