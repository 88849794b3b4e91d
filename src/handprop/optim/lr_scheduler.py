"""Learning-rate schedules as pure functions of the step: easy to plot, test and resume.

Each returns the learning rate for ``step`` in [0, total_steps); the trainer's schedule callback
writes it into ``opt.lr`` before every training batch.
"""
from __future__ import annotations

import math
from typing import Callable


def _cos_anneal(start: float, end: float, frac: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * frac)) / 2


def cosine(max_lr: float, total_steps: int, min_lr: float = 0.0) -> Callable[[int], float]:
    """Cosine annealing from ``max_lr`` to ``min_lr`` over ``total_steps`` (PyTorch's CosineAnnealingLR)."""
    _check(total_steps)
    return lambda step: _cos_anneal(max_lr, min_lr, min(step, total_steps) / total_steps)


def one_cycle(max_lr: float, total_steps: int, pct_start: float = 0.25, div_factor: float = 25.0,
              final_div_factor: float = 1e4) -> Callable[[int], float]:
    """Smith's one-cycle policy, cosine shaped (PyTorch's OneCycleLR, two phases).

    Warm up from max_lr/div_factor to max_lr over the first ``pct_start`` of the steps, then
    anneal to max_lr/(div_factor*final_div_factor).
    """
    _check(total_steps)
    if not 0 < pct_start < 1:
        raise ValueError(f"one_cycle: pct_start must be in (0, 1), got {pct_start}")
    initial = max_lr / div_factor
    final = initial / final_div_factor
    warm = max(1, round(pct_start * total_steps) - 1)
    rest = max(1, total_steps - 1 - warm)

    def lr(step: int) -> float:
        if step <= warm:
            return _cos_anneal(initial, max_lr, step / warm)
        return _cos_anneal(max_lr, final, min(step - warm, rest) / rest)

    return lr


SCHEDULES = {"onecycle": one_cycle, "cosine": cosine}


def _check(total_steps: int) -> None:
    if total_steps < 1:
        raise ValueError(f"a schedule needs at least one step, got total_steps={total_steps}")
