"""ActivationStats: what every layer's activations and every parameter's updates do in training.

For each watched layer and training batch: the mean and std of its output, the fraction of
near-zero outputs (|a| < ``zero_tol``) and a histogram of |a| (``bins`` equal bins over
[0, ``hist_max``], larger and non-finite values counted in the last bin, so a row sums to the
number of activations). For each parameter: the gradient norm ||g|| and the update-to-weight
ratio ||w_after - w_before|| / ||w_before|| of the optimiser step (about 1e-3 is healthy;
Karpathy's rule of thumb), measured on a fixed random sample of ``update_sample`` entries of
larger parameters: the exact ratio would cost five more passes over the weights per step,
as much as the rest of the watching, and a 4,096-entry sample is within a few percent.
A step the optimiser did not take (cancelled batch) is not recorded.

Watching costs time: on the default MLP (784-256-10, batch 64) recording every step makes
training about 20% slower (in CPU time), every 4th step about 5% (``every``;
``benchmarks/bench_stats.py``), so ``handprop train --stats`` records every
:data:`TRAIN_EVERY`-th step; 4 still gives more points per epoch than the plot has pixels.

After each epoch one line warns about any layer whose outputs were >= 90% near zero (dead
units) or whose std fell below 1e-3 (collapsed). With ``out``, ``stats.json`` and ``stats.png``
(means, stds, the histogram-over-time image per layer: fast.ai's "colorful dimension") are
written there after the fit.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable, TextIO

import numpy as np

from ..figures import have_matplotlib
from ..nn.hooks import HookGroup, named_layers
from ..nn.module import Module, Parameter
from ..serialize import atomic_write
from .learner import Callback

#: ``handprop train --stats`` records every TRAIN_EVERY-th training step (see the module docstring).
TRAIN_EVERY = 4
#: A layer is reported as dead when at least this fraction of its outputs is near zero...
DEAD_FRACTION = 0.9
#: ...and as collapsed when its activations' std is below this.
COLLAPSED_STD = 1e-3


def activation_summary(a: np.ndarray, bins: int, hist_max: float, zero_tol: float
                       ) -> tuple[float, float, float, np.ndarray]:
    """(mean, std, fraction with |a| < zero_tol, histogram of |a|) of one layer's output."""
    flat = a.reshape(-1)
    n = flat.size
    with np.errstate(over="ignore"):  # an overflowing sum of squares is caught below
        mean = float(np.add.reduce(flat)) / n
        var = float(np.dot(flat, flat)) / n - mean * mean
    if not (math.isfinite(var) and var > mean * mean):
        # E[a^2] - mean^2 cancels when |mean| >= std, and a^2 overflows float32 above 1.8e19:
        # two passes in float64 instead (NaN stays NaN)
        mean = float(flat.mean(dtype=np.float64))
        centred = np.subtract(flat, mean, dtype=np.float64)
        var = float(np.dot(centred, centred)) / n
    magnitude = np.abs(flat)
    near_zero = np.count_nonzero(magnitude < zero_tol) / n
    scaled = np.multiply(magnitude, bins / hist_max, out=magnitude)
    index = np.fmin(scaled, bins - 1, out=scaled).astype(np.intp)  # fmin: NaN -> the last bin
    return mean, math.sqrt(var), near_zero, np.bincount(index, minlength=bins)


def _take(a: np.ndarray, sample: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
    """The entries ``sample`` of ``a`` flattened (all of them when ``sample`` is None)."""
    flat = a.reshape(-1)
    if sample is not None:
        return np.take(flat, sample, out=out)
    if out is None:
        return flat
    np.copyto(out, flat)
    return out


def _norm(a: np.ndarray) -> float:
    flat = a.reshape(-1)
    return math.sqrt(float(np.dot(flat, flat)))


class _LayerLog:
    """The per-step numbers of one watched layer."""

    def __init__(self, name: str, module: Module):
        self.name, self.module = name, module
        self.mean: list[float] = []
        self.std: list[float] = []
        self.near_zero: list[float] = []
        self.hist: list[np.ndarray] = []
        self.pending: tuple | None = None  # this batch's numbers, kept once the step is taken

    def commit(self) -> None:
        if self.pending is not None:
            for column, value in zip((self.mean, self.std, self.near_zero, self.hist), self.pending):
                column.append(value)
            self.pending = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": type(self.module).__name__, "layer": repr(self.module),
                "mean": _json_floats(self.mean), "std": _json_floats(self.std),
                "near_zero": _json_floats(self.near_zero),
                "hist": [h.tolist() for h in self.hist]}


class _ParamLog:
    """The per-step gradient norm and update-to-weight ratio of one parameter."""

    def __init__(self, name: str, param: Parameter, sample_size: int | None):
        self.name, self.param = name, param
        size = param.data.size
        # sorted flat indices of the entries whose update is measured (None: all of them), fixed
        # (the same entries at every step and in every run)
        self.sample = None if sample_size is None or size <= sample_size else \
            np.sort(np.random.default_rng(size).choice(size, sample_size, replace=False))
        self.before = np.empty(size if self.sample is None else self.sample.size, param.dtype)
        self.grad_norm: list[float] = []
        self.update_ratio: list[float] = []

    def before_step(self) -> None:
        self.grad_norm.append(_norm(self.param.grad))
        _take(self.param.data, self.sample, out=self.before)

    def after_step(self) -> None:
        weight = _norm(self.before)
        update = _norm(np.subtract(_take(self.param.data, self.sample), self.before, out=self.before))
        self.update_ratio.append(update / weight if weight else (0.0 if update == 0 else math.inf))

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.param.shape), "grad_norm": _json_floats(self.grad_norm),
                "update_ratio": _json_floats(self.update_ratio)}


class ActivationStats(Callback):
    """Watch ``modules`` (default: every layer without children) while training; see the module
    docstring. ``every``: record every n-th training step only. Results: :meth:`as_dict`."""

    order = 15  # after the progress bar's epoch line, so a warning follows the epoch it is about

    def __init__(self, modules: Iterable[Module] | None = None, bins: int = 40, hist_max: float = 10.0,
                 zero_tol: float = 1e-3, every: int = 1, update_sample: int | None = 4096,
                 out: str | Path | None = None, stream: TextIO | None = None):
        for name, value in (("bins", bins), ("every", every), ("update_sample", update_sample)):
            if (isinstance(value, bool) or not isinstance(value, int) or value < 1) and \
                    not (name == "update_sample" and value is None):
                raise ValueError(f"ActivationStats: {name} must be a positive integer"
                                 f"{' or None' if name == 'update_sample' else ''}, got {value!r}")
        for name, value in (("hist_max", hist_max), ("zero_tol", zero_tol)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"ActivationStats: {name} must be a finite number > 0, got {value!r}")
        self.modules = None if modules is None else list(modules)
        for i, m in enumerate(self.modules or ()):
            if not isinstance(m, Module):
                raise ValueError(f"ActivationStats: modules[{i}] is {type(m).__name__}, not a Module")
        self.bins, self.hist_max, self.zero_tol, self.every = bins, float(hist_max), float(zero_tol), every
        self.update_sample = update_sample
        self.out = None if out is None else Path(out)
        self.stream = stream
        self.hooks = HookGroup()
        self.recording = False

    # -- events ------------------------------------------------------------------------------------
    def before_fit(self) -> None:
        model = self.learn.model
        names = named_layers(model, leaves_only=False)
        modules = self.modules if self.modules is not None else list(named_layers(model))
        unknown = [m for m in modules if m not in names]
        if unknown:
            raise ValueError(f"ActivationStats: {unknown[0]!r} is not part of the model being trained")
        self.layers = [_LayerLog(names[m], m) for m in modules]
        self.params = [_ParamLog(name, p, self.update_sample) for name, p in model.named_parameters()]
        self.steps: list[int] = []
        self.epochs: list[int] = []
        self.warnings: list[str] = []
        self.hooks = HookGroup(log.module.register_forward_hook(self._hook(log)) for log in self.layers)

    def _hook(self, log: _LayerLog):
        def record(module: Module, inputs: tuple, output: np.ndarray) -> None:
            if self.recording:
                log.pending = activation_summary(output, self.bins, self.hist_max, self.zero_tol)
        return record

    def before_batch(self) -> None:
        self.recording = self.learn.training and self.learn.train_step % self.every == 0
        for log in self.layers:
            log.pending = None

    def after_backward(self) -> None:
        if self.recording:
            for log in self.params:
                log.before_step()

    def after_step(self) -> None:
        if not self.recording:
            return
        for log in self.params:
            log.after_step()
        for log in self.layers:
            log.commit()
        self.steps.append(self.learn.train_step)
        self.epochs.append(self.learn.epoch)

    def after_batch(self) -> None:
        self.recording = False

    def after_epoch(self) -> None:
        warning = self.epoch_warning(self.learn.epoch)
        if warning:
            self.warnings.append(warning)
            print(warning, file=self.stream or sys.stderr, flush=True)

    def after_fit(self) -> None:
        self.hooks.remove()
        if self.out is not None:
            self.write(self.out)

    # -- results -----------------------------------------------------------------------------------
    def epoch_warning(self, epoch: int) -> str | None:
        """One line naming the layers that were dead or collapsed in ``epoch`` (means over its steps)."""
        rows = np.flatnonzero(np.asarray(self.epochs) == epoch)
        if rows.size == 0:
            return None
        problems = []
        for log in self.layers:
            near_zero = float(np.mean(np.asarray(log.near_zero)[rows]))
            std = float(np.mean(np.asarray(log.std)[rows]))
            label = f"{log.name} ({type(log.module).__name__})"
            if not math.isfinite(std):
                problems.append(f"{label} has non-finite activations")
                continue
            if near_zero >= DEAD_FRACTION:
                problems.append(f"{label} outputs {near_zero:.0%} near zero (dead units?)")
            if std < COLLAPSED_STD:
                problems.append(f"{label} std {std:.2g} < {COLLAPSED_STD:g} (collapsed)")
        return f"warning: epoch {epoch + 1}: " + "; ".join(problems) if problems else None

    def as_dict(self) -> dict[str, Any]:
        """Everything recorded, as written to ``stats.json`` (non-finite numbers as None)."""
        return {"bins": self.bins, "hist_max": self.hist_max, "zero_tol": self.zero_tol, "every": self.every,
                "steps": self.steps, "epochs": [e + 1 for e in self.epochs],
                "layers": [log.as_json() for log in self.layers],
                "params": [log.as_json() for log in self.params],
                "warnings": self.warnings}

    def write(self, out: str | Path) -> None:
        """``stats.json`` and (with matplotlib) ``stats.png`` in the folder ``out``."""
        out = Path(out)
        stats = self.as_dict()
        with atomic_write(out / "stats.json", "w") as f:
            json.dump(stats, f, allow_nan=False)
        if have_matplotlib("stats.png", self.stream):
            from .stats_plots import plot_stats
            plot_stats(stats, out / "stats.png")


def _json_floats(values: Iterable[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in map(float, values)]
