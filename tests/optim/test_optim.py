"""Optimisers: 20-step trajectories equal PyTorch's (same init, same net stepped in both)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from engine_helpers import rel_error, torch_mirror
from handprop import nn, optim
from handprop.optim.adam import adam_update
from handprop.optim.sgd import sgd_update

STEPS = 20

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=0.05),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.5),
    dict(lr=0.05, momentum=0.9, weight_decay=0.01, dampening=0.1),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02),
]
ADAM_CONFIGS = [
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    ("AdamW", dict(lr=0.01)),                    # default weight_decay=1e-2, as torch
    ("AdamW", dict(lr=0.01, weight_decay=0.0)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, betas=(0.85, 0.95))),
]


def _net():
    return nn.Sequential(nn.Linear(5, 8, dtype=np.float64, rng=0), nn.Tanh(),
                         nn.Linear(8, 3, dtype=np.float64, rng=1))


def _batches():
    rng = np.random.default_rng(123)
    return [(rng.standard_normal((16, 5)) * 2, rng.integers(0, 3, 16)) for _ in range(STEPS)]


def _step_both(torch, model, opt, tmodel, topt, x, y):
    crit = nn.CrossEntropyLoss()
    opt.zero_grad()
    loss = crit(model(x), y)
    model.backward(crit.backward())
    opt.step()
    topt.zero_grad()
    tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    topt.step()
    return loss, tloss.item()


def _assert_same_params(model, tmodel, step, tol=1e-6):
    for (name, p), tp in zip(model.named_parameters(), tmodel.parameters()):
        t = tp.detach().numpy()
        assert rel_error(p.data, t.T if t.ndim == 2 else t) <= tol, f"{name} differs after step {step}"


def _trajectory(torch, make_opt, make_topt):
    model = _net()
    tmodel = torch_mirror(torch, model)
    opt, topt = make_opt(model.parameters()), make_topt(tmodel.parameters())
    start = [p.data.copy() for p in model.parameters()]
    losses = []
    for step, (x, y) in enumerate(_batches(), 1):
        loss, tloss = _step_both(torch, model, opt, tmodel, topt, x, y)
        assert loss == pytest.approx(tloss, rel=1e-9)
        _assert_same_params(model, tmodel, step)
        losses.append(loss)
    assert any(not np.allclose(p.data, s) for p, s in zip(model.parameters(), start)), "nothing moved"
    return losses


@pytest.mark.parametrize("blas_update", [False, True], ids=["numpy update", "blas axpy update"])
@pytest.mark.parametrize("config", SGD_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_sgd_trajectory_matches_torch(torch, config, blas_update, monkeypatch):
    if blas_update:  # the one-pass update large weights take, here on every weight
        from handprop.nn import blas
        monkeypatch.setattr(blas, "MIN_AXPY_ELEMENTS", 0)
    _trajectory(torch, lambda ps: optim.SGD(ps, **config), lambda ps: torch.optim.SGD(ps, **config))


@pytest.mark.parametrize("name,config", ADAM_CONFIGS,
                         ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items()))
def test_adam_trajectory_matches_torch(torch, name, config):
    _trajectory(torch, lambda ps: getattr(optim, name)(ps, **config),
                lambda ps: getattr(torch.optim, name)(ps, **config))


def test_training_decreases_the_loss(torch):
    losses = _trajectory(torch, lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                         lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_adamw_differs_from_adam_with_l2():
    # decoupled decay is not the same as L2 in the gradient (Loshchilov & Hutter): a real check
    # that each class applies its own rule
    a, b = _net(), _net()
    opt_a, opt_b = optim.Adam(a.parameters(), lr=0.01, weight_decay=0.1), \
        optim.AdamW(b.parameters(), lr=0.01, weight_decay=0.1)
    for p in a.parameters() + b.parameters():
        p.grad[...] = 0.5
    for _ in range(3):
        opt_a.step()
        opt_b.step()
    assert not np.allclose(a[0].weight.data, b[0].weight.data)


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1),
    lambda ps: optim.AdamW(ps, lr=0.01, betas=(0.8, 0.99)),
], ids=["SGD", "Adam", "AdamW"])
def test_state_dict_resumes_bit_for_bit(make):
    crit = nn.CrossEntropyLoss()
    batches = _batches()

    def run(model, opt, part):
        for x, y in part:
            opt.zero_grad()
            crit(model(x), y)
            model.backward(crit.backward())
            opt.step()

    ref = _net()
    ref_opt = make(ref.parameters())
    run(ref, ref_opt, batches)

    first = _net()
    first_opt = make(first.parameters())
    run(first, first_opt, batches[:10])
    weights, opt_state = first.state_dict(), first_opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in opt_state.values())

    resumed = _net()
    resumed.load_state_dict(weights)
    # built with other hyperparameters (plain SGD, lr=123): load_state_dict restores them
    resumed_opt = type(ref_opt)(resumed.parameters(), lr=123.0)
    resumed_opt.load_state_dict(opt_state)
    assert resumed_opt.hyperparameters() == first_opt.hyperparameters()
    run(resumed, resumed_opt, batches[10:])
    for p, q in zip(resumed.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_optimizer_state_is_per_parameter_and_zero_grad_reuses_buffers():
    model = _net()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad[...] = 1.0
    buffers = [p.grad for p in model.parameters()]
    opt.step()
    assert all("momentum_buffer" in opt.state[p] for p in model.parameters())
    assert opt.state[model[0].weight]["momentum_buffer"].shape == (5, 8)
    opt.zero_grad()
    assert all(p.grad is b and not b.any() for p, b in zip(model.parameters(), buffers))


def test_lr_is_a_plain_attribute_a_scheduler_can_change():
    p = nn.Parameter(np.array([1.0]))
    opt = optim.SGD([p], lr=0.1)
    p.grad[...] = 1.0
    opt.step()
    opt.lr = 0.5
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 - 0.5])


def test_update_rules_by_hand():
    p, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    state = {}
    sgd_update(p, g, state, lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0)
    np.testing.assert_allclose(p, [0.95, -2.025])
    sgd_update(p, g, state, lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0)
    np.testing.assert_allclose(p, [0.95 - 0.1 * 0.95, -2.025 - 0.1 * 0.475])
    q, st = np.array([1.0]), {}
    adam_update(q, np.array([3.0]), st, lr=0.1, betas=(0.9, 0.999), eps=0.0, weight_decay=0.0, decoupled=False)
    np.testing.assert_allclose(q, [0.9])  # the first Adam step moves every coordinate by lr
    assert st["step"] == 1


def test_repr_lists_hyperparameters():
    p = [nn.Parameter(np.zeros(1))]
    assert repr(optim.SGD(p, lr=0.1, momentum=0.9)) == \
        "SGD(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0)"
    assert repr(optim.AdamW(p)) == "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01)"


# -- errors ------------------------------------------------------------------------------------

def raises(error, message):
    return pytest.raises(error, match=f"^{re.escape(message)}$")


def _params():
    return nn.Linear(2, 2).parameters()


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf"), True, "0.1"])
def test_bad_learning_rate(cls, lr):
    with raises(ValueError, f"{cls.__name__}: invalid lr {lr!r}, expected a finite number >= 0"):
        cls(_params(), lr=lr)


@pytest.mark.parametrize("kwargs,message", [
    (dict(lr=0.1, nesterov=True), "SGD: nesterov momentum requires momentum > 0 and dampening = 0"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "SGD: nesterov momentum requires momentum > 0 and dampening = 0"),
    (dict(lr=0.1, momentum=-0.9), "SGD: invalid momentum -0.9, expected a finite number >= 0"),
    (dict(lr=0.1, dampening=-1), "SGD: invalid dampening -1, expected a finite number >= 0"),
    (dict(lr=0.1, weight_decay=-1e-4), "SGD: invalid weight_decay -0.0001, expected a finite number >= 0"),
])
def test_sgd_bad_hyperparameters(kwargs, message):
    with raises(ValueError, message):
        optim.SGD(_params(), **kwargs)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize("kwargs,message", [
    (dict(betas=(1.0, 0.999)), "{name}: invalid betas (1.0, 0.999), expected two numbers in [0, 1)"),
    (dict(betas=(0.9, -0.1)), "{name}: invalid betas (0.9, -0.1), expected two numbers in [0, 1)"),
    (dict(betas=(0.9, 1.5)), "{name}: invalid betas (0.9, 1.5), expected two numbers in [0, 1)"),
    (dict(betas=(0.9,)), "{name}: invalid betas (0.9,), expected two numbers in [0, 1)"),
    (dict(eps=-1e-8), "{name}: invalid eps -1e-08, expected a finite number >= 0"),
    (dict(weight_decay=-0.01), "{name}: invalid weight_decay -0.01, expected a finite number >= 0"),
])
def test_adam_bad_hyperparameters(cls, kwargs, message):
    with raises(ValueError, message.format(name=cls.__name__)):
        cls(_params(), **kwargs)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_empty_or_wrong_parameter_list(cls):
    with raises(ValueError, f"{cls.__name__}: got an empty parameter list"):
        cls([], lr=0.1)
    with raises(ValueError, f"{cls.__name__}: got an empty parameter list"):
        cls(nn.ReLU().parameters(), lr=0.1)  # a model without parameters
    with raises(ValueError, f"{cls.__name__}: got an empty parameter list"):
        cls(iter([]), lr=0.1)
    with raises(TypeError, f"{cls.__name__}: parameter 1 is ndarray, not a Parameter (pass model.parameters())"):
        cls([nn.Parameter(np.zeros(1)), np.zeros(1)], lr=0.1)


def test_load_state_dict_unexpected_key():
    opt = optim.SGD(_params(), lr=0.1)
    with raises(ValueError, "SGD.load_state_dict: unexpected key 'momentum'"):
        opt.load_state_dict({"momentum": np.array(0.9)})
