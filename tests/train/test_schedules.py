"""Learning-rate schedules (handprop.optim.lr_scheduler): shape, end points, PyTorch agreement."""
from __future__ import annotations

import math

import numpy as np
import pytest

from handprop.optim.lr_scheduler import SCHEDULES, cosine, one_cycle


@pytest.mark.parametrize("total", [10, 100, 937])
def test_one_cycle_rises_to_max_then_falls_to_final(total):
    max_lr = 0.4
    f = one_cycle(max_lr, total)
    lrs = np.array([f(s) for s in range(total)])
    peak = int(lrs.argmax())
    assert lrs[0] == pytest.approx(max_lr / 25)
    assert lrs.max() == pytest.approx(max_lr)
    assert 0 < peak < total - 1
    assert peak == pytest.approx(0.25 * total, abs=2)
    assert np.all(np.diff(lrs[:peak + 1]) > 0), "warm-up must rise"
    assert np.all(np.diff(lrs[peak:]) < 0), "annealing must fall"
    assert lrs[-1] == pytest.approx(max_lr / (25 * 1e4), rel=1e-6)
    assert lrs.min() >= max_lr / (25 * 1e4) * (1 - 1e-9)


def test_one_cycle_rejects_bad_arguments():
    with pytest.raises(ValueError):
        one_cycle(0.1, 0)
    with pytest.raises(ValueError):
        one_cycle(0.1, 10, pct_start=1.0)


@pytest.mark.parametrize("total", [40, 100])
def test_one_cycle_matches_pytorch(torch, total):
    max_lr = 0.1
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=max_lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total, pct_start=0.25,
                                                anneal_strategy="cos", cycle_momentum=False,
                                                div_factor=25.0, final_div_factor=1e4, three_phase=False)
    theirs = []
    for _ in range(total):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    f = one_cycle(max_lr, total)
    np.testing.assert_allclose([f(s) for s in range(total)], theirs, rtol=1e-9, atol=0)


@pytest.mark.parametrize("min_lr", [0.0, 1e-3])
def test_cosine_from_max_to_min(min_lr):
    total, max_lr = 50, 0.2
    f = cosine(max_lr, total, min_lr=min_lr)
    lrs = np.array([f(s) for s in range(total + 1)])
    assert lrs[0] == pytest.approx(max_lr)
    assert lrs[total // 2] == pytest.approx((max_lr + min_lr) / 2)
    assert lrs[-1] == pytest.approx(min_lr, abs=1e-15)
    assert f(total + 10) == pytest.approx(min_lr, abs=1e-15), "past the end it stays at min_lr"
    assert np.all(np.diff(lrs) < 0)


def test_cosine_matches_pytorch(torch):
    total, max_lr, min_lr = 30, 0.5, 0.01
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=max_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=min_lr)
    theirs = []
    for _ in range(total):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    theirs.append(opt.param_groups[0]["lr"])
    f = cosine(max_lr, total, min_lr)
    np.testing.assert_allclose([f(s) for s in range(total + 1)], theirs, rtol=1e-9, atol=1e-12)


def test_schedule_registry_names_the_cli_choices():
    assert set(SCHEDULES) == {"onecycle", "cosine"}
    assert all(math.isfinite(SCHEDULES[k](0.1, 10)(3)) for k in SCHEDULES)
