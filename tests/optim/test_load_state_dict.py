"""Optimizer.load_state_dict takes untrusted state (a checkpoint's ``opt.*``): only known fields,
every value checked, nothing changed unless all of it is valid, no attribute named by the file."""
from __future__ import annotations

import re

import numpy as np
import pytest

from handprop import nn, optim


def _trained(make, steps: int = 3):
    """A model and its optimiser after ``steps`` steps on a constant gradient."""
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
    opt = make(model.parameters())
    for _ in range(steps):
        for p in model.parameters():
            p.grad[...] = 0.25
        opt.step()
    return model, opt


def _sgd(ps):
    return optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)


def _adamw(ps):
    return optim.AdamW(ps, lr=0.01, betas=(0.8, 0.99))


def _fresh(make):
    """An optimiser of the same kind over another model, built with other settings."""
    model = nn.Sequential(nn.Linear(4, 3, rng=5), nn.ReLU(), nn.Linear(3, 2, rng=6))
    return type(make(model.parameters()))(model.parameters(), lr=123.0)


def _snapshot(opt):
    return opt.hyperparameters(), {i: {k: np.array(v) for k, v in opt.state[p].items()}
                                   for i, p in enumerate(opt.params)}


def _same(a, b):
    (hyper_a, state_a), (hyper_b, state_b) = a, b
    return hyper_a == hyper_b and state_a.keys() == state_b.keys() and all(
        state_a[i].keys() == state_b[i].keys() and all(np.array_equal(state_a[i][k], state_b[i][k]) for k in state_a[i])
        for i in state_a)


@pytest.mark.parametrize("make", [_sgd, _adamw], ids=["SGD", "AdamW"])
def test_round_trip_with_steps(make):
    _, opt = _trained(make)
    other = _fresh(make)
    other.load_state_dict(opt.state_dict(), steps=3)
    assert other.hyperparameters() == opt.hyperparameters()
    assert _same(_snapshot(other), _snapshot(opt))
    arrays = [other.state[p][name] for p in other.params for name, kind in other.state_fields().items() if kind == "param"]
    assert arrays and all(a.dtype == np.float32 for a in arrays)


def _bad_cases():
    """(optimiser maker, how to tamper with its state dict, expected message)."""
    def drop(key):
        return lambda s: {k: v for k, v in s.items() if k != key}

    def put(key, value):
        return lambda s: {**s, key: value}

    return [
        (_sgd, put("hyper.__class__", np.array(0.5)), "unexpected key 'hyper.__class__'"),
        (_sgd, put("hyper.params", np.array(1.0)), "unexpected key 'hyper.params'"),
        (_sgd, put("lr", np.array(1.0)), "unexpected key 'lr'"),
        (_sgd, drop("hyper.lr"), "missing 'hyper.lr'"),
        (_sgd, put("hyper.lr", np.array(-1.0)), "SGD: invalid lr -1.0, expected a finite number >= 0"),
        (_sgd, put("hyper.lr", np.array(np.nan)), "SGD: invalid lr nan"),
        (_sgd, put("hyper.lr", np.array([0.1, 0.2])), "hyper.lr must be a float array of shape (), got float64 of shape (2,)"),
        (_sgd, put("hyper.nesterov", np.array(1.0)), "hyper.nesterov must be a bool array of shape ()"),
        (_sgd, put("hyper.momentum", np.array(0.0)), "SGD: nesterov momentum requires momentum > 0"),
        (_sgd, put("state.0.evil", np.zeros((4, 3), np.float32)), "unexpected key 'state.0.evil'"),
        (_sgd, put("state.4.momentum_buffer", np.zeros(2, np.float32)), "unexpected key 'state.4.momentum_buffer'"),
        (_sgd, put("state.01.momentum_buffer", np.zeros((4, 3), np.float32)), "unexpected key 'state.01.momentum_buffer'"),
        (_sgd, put("state.0.momentum_buffer", np.zeros((3, 4), np.float32)),
         "state.0.momentum_buffer must be a float array of shape (4, 3) like its parameter, got float32 of shape (3, 4)"),
        (_sgd, put("state.0.momentum_buffer", np.zeros((4, 3), np.int64)), "must be a float array of shape (4, 3)"),
        (_sgd, put("state.0.momentum_buffer", np.zeros((4, 3), np.complex64)), "must be a float array of shape (4, 3)"),
        (_sgd, put("state.0.momentum_buffer", np.full((4, 3), np.inf, np.float32)),
         "state.0.momentum_buffer holds NaN or infinite values"),
        (_adamw, put("hyper.betas", np.array([0.9, 1.5])), "AdamW: invalid betas (0.9, 1.5)"),
        (_adamw, put("hyper.betas", np.array(0.9)), "hyper.betas must be a float array of shape (2,)"),
        (_adamw, drop("state.1.exp_avg_sq"), "state.1.step, state.1.exp_avg without the rest of"),
        (_adamw, put("state.2.step", np.array(0)), "state.2.step must be a positive integer, got int64 0"),
        (_adamw, put("state.2.step", np.array(2.0)), "state.2.step must be a positive integer, got float64 2.0"),
        (_adamw, put("state.2.step", np.array([3])), "state.2.step must be a positive integer, got int64 (1,)"),
    ]


@pytest.mark.parametrize("make, tamper, message", _bad_cases())
def test_bad_state_is_refused_and_changes_nothing(make, tamper, message):
    _, opt = _trained(make)
    target = _fresh(make)
    before = _snapshot(target)
    with pytest.raises(ValueError, match=re.escape(message)):
        target.load_state_dict(tamper(opt.state_dict()))
    assert _same(_snapshot(target), before), "a refused state changes nothing"
    assert type(target) is type(opt)


def test_no_attribute_is_set_from_a_file_name():
    """Even a known-looking name outside hyperparameters() (``params``, ``state``) is refused."""
    _, opt = _trained(_sgd)
    target = _fresh(_sgd)
    params = target.params
    for name in ("params", "state", "step", "zero_grad"):
        with pytest.raises(ValueError, match=f"unexpected key 'hyper.{name}'"):
            target.load_state_dict({**opt.state_dict(), f"hyper.{name}": np.array(1.0)})
    assert target.params is params and callable(target.step) and callable(target.zero_grad)


@pytest.mark.parametrize("make", [_sgd, _adamw], ids=["SGD", "AdamW"])
def test_steps_must_agree_with_the_state(make):
    _, opt = _trained(make, steps=3)
    state = opt.state_dict()
    fresh_state = make(_trained(make, steps=0)[0].parameters()).state_dict()
    _fresh(make).load_state_dict(fresh_state, steps=0)
    with pytest.raises(ValueError, match=r"after 5 steps every parameter has its state"):
        _fresh(make).load_state_dict(fresh_state, steps=5)  # a state lost: not a silent fresh start
    with pytest.raises(ValueError, match="there is no state before the first step"):
        _fresh(make).load_state_dict(state, steps=0)
    if make is _adamw:
        with pytest.raises(ValueError, match=r"step counts \[3\] disagree with the 4 steps taken"):
            _fresh(make).load_state_dict(state, steps=4)
        with pytest.raises(ValueError, match=r"step counts \[3, 7\] disagree"):
            _fresh(make).load_state_dict({**state, "state.1.step": np.array(7)}, steps=3)


def test_momentum_free_sgd_keeps_no_state():
    _, opt = _trained(lambda ps: optim.SGD(ps, lr=0.1))
    assert opt.state_fields() == {} and opt.state_dict().keys() == {f"hyper.{k}" for k in opt.hyperparameters()}
    target = _fresh(_sgd)
    target.load_state_dict(opt.state_dict(), steps=3)
    with pytest.raises(ValueError, match="unexpected key 'state.0.momentum_buffer'"):
        target.load_state_dict({**opt.state_dict(), "state.0.momentum_buffer": np.zeros((4, 3), np.float32)})


def test_restored_state_is_a_copy_in_the_parameter_dtype():
    _, opt = _trained(_adamw)
    state = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in opt.state_dict().items()}
    target = _fresh(_adamw)
    target.load_state_dict(state, steps=3)
    p = target.params[0]
    assert target.state[p]["exp_avg"].dtype == np.float32
    state["state.0.exp_avg"][...] = 7.0
    assert not (target.state[p]["exp_avg"] == 7.0).any(), "the file's arrays are not aliased"
