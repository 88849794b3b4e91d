"""The trust matrix: for every hand-written layer and loss, four independent gradients agree.

hand-written backward == autograd of the same forward in Tensor ops (``tensor_forward``)
== central differences == PyTorch, pairwise, in float64 with relative error <= 1e-6.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Callable

import numpy as np
import pytest

from handprop import nn
from handprop.autograd import autograd_grads, tensor_forward, torch_forward
from handprop.gradcheck import numerical_grad

TOL = 1e-6
F64 = np.float64


@dataclass
class Case:
    name: str
    make: Callable[[], object]            # the handprop layer or loss, float64
    shape: tuple[int, ...]                # input (layer) or output (loss) shape
    torch_fn: Callable                    # (torch, x, *params) or (torch, output, target)
    target: Callable[[np.random.Generator], np.ndarray] | None = None  # losses only


def _general_relu(torch, x, leak, sub, maxv):
    F = torch.nn.functional
    out = F.leaky_relu(x, leak) if leak else torch.relu(x)
    if sub is not None:
        out = out - sub
    return out.clamp(max=maxv) if maxv is not None else out


def _torch_linear(torch, x, w, b=None):
    return x @ w if b is None else x @ w + b


LAYERS = [
    Case("Linear", lambda: nn.Linear(5, 3, dtype=F64, rng=0), (4, 5), _torch_linear),
    Case("Linear(bias=False)", lambda: nn.Linear(5, 3, bias=False, dtype=F64, rng=0), (4, 5), _torch_linear),
    Case("Linear(3-d input)", lambda: nn.Linear(5, 3, dtype=F64, rng=1), (2, 4, 5), _torch_linear),
    Case("ReLU", nn.ReLU, (4, 5), lambda torch, x: torch.relu(x)),
    Case("LeakyReLU", lambda: nn.LeakyReLU(0.1), (4, 5),
         lambda torch, x: torch.nn.functional.leaky_relu(x, 0.1)),
    Case("GeneralReLU", lambda: nn.GeneralReLU(leak=0.1, sub=0.4, maxv=1.0), (4, 5),
         lambda torch, x: _general_relu(torch, x, 0.1, 0.4, 1.0)),
    Case("GeneralReLU()", nn.GeneralReLU, (4, 5), lambda torch, x: _general_relu(torch, x, None, None, None)),
    Case("Tanh", nn.Tanh, (4, 5), lambda torch, x: torch.tanh(x)),
    Case("Sigmoid", nn.Sigmoid, (4, 5), lambda torch, x: torch.sigmoid(x)),
    Case("LogSoftmax", nn.LogSoftmax, (4, 5), lambda torch, x: torch.log_softmax(x, -1)),
    Case("Sequential(Linear, ReLU, Linear)",
         lambda: nn.Sequential(nn.Linear(5, 6, dtype=F64, rng=2), nn.ReLU(), nn.Linear(6, 3, dtype=F64, rng=3)),
         (4, 5), lambda torch, x, w1, b1, w2, b2: torch.relu(x @ w1 + b1) @ w2 + b2),
]


def _classes(rng):
    return rng.integers(0, 5, 4)


LOSSES = [
    Case("MSELoss", nn.MSELoss, (4, 5),
         lambda torch, o, t: torch.nn.functional.mse_loss(o, torch.tensor(t)),
         lambda rng: rng.standard_normal((4, 5))),
    Case("MSELoss(sum)", lambda: nn.MSELoss("sum"), (4, 5),
         lambda torch, o, t: torch.nn.functional.mse_loss(o, torch.tensor(t), reduction="sum"),
         lambda rng: rng.standard_normal((4, 5))),
    Case("MSELoss((N,1) vs (N,))", nn.MSELoss, (4, 1),
         lambda torch, o, t: torch.nn.functional.mse_loss(o.squeeze(-1), torch.tensor(t)),
         lambda rng: rng.standard_normal(4)),
    Case("CrossEntropyLoss", nn.CrossEntropyLoss, (4, 5),
         lambda torch, o, t: torch.nn.functional.cross_entropy(o, torch.tensor(t)), _classes),
    Case("CrossEntropyLoss(sum)", lambda: nn.CrossEntropyLoss("sum"), (4, 5),
         lambda torch, o, t: torch.nn.functional.cross_entropy(o, torch.tensor(t), reduction="sum"), _classes),
    Case("NLLLoss", nn.NLLLoss, (4, 5),
         lambda torch, o, t: torch.nn.functional.nll_loss(o, torch.tensor(t)), _classes),
    Case("NLLLoss(sum)", lambda: nn.NLLLoss("sum"), (4, 5),
         lambda torch, o, t: torch.nn.functional.nll_loss(o, torch.tensor(t), reduction="sum"), _classes),
]


def _assert_matrix(rel_error, columns: dict[str, list[np.ndarray]], names: list[str], case: str) -> None:
    """Every pair of methods agrees on every tensor; the failure message is the whole matrix."""
    lines, ok = [], True
    for i, tensor in enumerate(names):
        for a, b in combinations(columns, 2):
            err = rel_error(columns[a][i], columns[b][i])
            ok &= err <= TOL
            lines.append(f"  {tensor:<10} {a:>12} vs {b:<12} {err:.2e}{'' if err <= TOL else '  FAIL'}")
    assert ok, f"{case}: gradients disagree (rel. error > {TOL})\n" + "\n".join(lines)


@pytest.mark.parametrize("case", LAYERS, ids=[c.name for c in LAYERS])
def test_layer_backward_trust_matrix(torch, rel_error, case):
    rng = np.random.default_rng(42)
    layer = case.make()
    params = layer.parameters()
    x = rng.standard_normal(case.shape)
    r = rng.standard_normal(np.shape(layer(x)))  # the objective is sum(layer(x) * r)
    layer.__dict__.pop("_cache", None)
    for m in layer.modules():
        m.__dict__.pop("_cache", None)

    layer.zero_grad()
    out = layer(x)
    hand = [layer.backward(r)] + [p.grad.copy() for p in params]

    auto = autograd_grads(layer, x, grad_output=r)
    np.testing.assert_allclose(auto.output, out, rtol=1e-12, atol=0)

    def objective() -> float:
        value = float(np.vdot(layer(x), r))
        for m in layer.modules():
            m.__dict__.pop("_cache", None)
        return value
    numeric = [numerical_grad(objective, a) for a in [x] + [p.data for p in params]]

    tx = [torch.tensor(a, requires_grad=True) for a in [x] + [p.data for p in params]]
    tout = case.torch_fn(torch, *tx)
    np.testing.assert_allclose(tout.detach().numpy(), out, rtol=1e-12, atol=1e-15)
    tout.backward(torch.tensor(r))
    # the library's own PyTorch twin (used by `handprop gradcheck`) agrees with this test's
    np.testing.assert_allclose(torch_forward(layer)(*[torch.tensor(a) for a in [x] + [p.data for p in params]]),
                               out, rtol=1e-12, atol=1e-15)

    names = ["input"] + [n for n, _ in layer.named_parameters()]
    _assert_matrix(rel_error, {"hand": hand, "autograd": [auto.grad_input] + auto.grad_params,
                    "central": numeric, "torch": [t.grad.numpy() for t in tx]}, names, case.name)


@pytest.mark.parametrize("case", LOSSES, ids=[c.name for c in LOSSES])
def test_loss_backward_trust_matrix(torch, rel_error, case):
    rng = np.random.default_rng(7)
    crit = case.make()
    out = rng.standard_normal(case.shape)
    target = case.target(rng)

    value = crit(out, target)
    hand = crit.backward()
    auto = autograd_grads(crit, out, target=target)
    assert auto.output == pytest.approx(value, rel=1e-12)

    def objective() -> float:
        v = crit(out, target)
        crit.__dict__.pop("_cache", None)
        return v
    numeric = numerical_grad(objective, out)

    tout = torch.tensor(out, requires_grad=True)
    tloss = case.torch_fn(torch, tout, target)
    assert tloss.item() == pytest.approx(value, rel=1e-12)
    assert torch_forward(crit)(torch.tensor(out), target).item() == pytest.approx(value, rel=1e-12)
    tloss.backward()
    _assert_matrix(rel_error, {"hand": [hand], "autograd": [auto.grad_input], "central": [numeric],
                    "torch": [tout.grad.numpy()]}, ["output"], case.name)


def test_every_builtin_layer_and_loss_has_a_tensor_reference():
    """A new layer in handprop.nn must join the trust matrix (and ``handprop gradcheck``)."""
    import inspect

    covered = {type(c.make()) for c in LAYERS + LOSSES}
    for name in nn.__all__:
        obj = getattr(nn, name)
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj not in (nn.Module, nn.Loss):
            assert obj in covered, f"{name} is not in the trust matrix"


def test_tensor_forward_rejects_unknown_layers():
    class Mystery(nn.Module):
        pass

    with pytest.raises(TypeError, match="no Tensor reference for Mystery"):
        tensor_forward(Mystery())
