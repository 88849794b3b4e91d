"""The trust matrix: for every registered layer and loss, four independent gradients agree.

hand-written backward == autograd of the registered Tensor forward == central differences
== the registered PyTorch twin, pairwise, in float64 with relative error <= 1e-6. The cases come
from the registry (``handprop.nn.registry``): a new layer joins by registering, with no edit here.
"""
from __future__ import annotations

import inspect
from itertools import combinations

import numpy as np
import pytest

from handprop import nn
from handprop.autograd import autograd_grads, tensor_forward, torch_forward
from handprop.gradcheck import numerical_grad
from handprop.nn import registry

TOL = 1e-6

CASES = [(entry, case) for entry in registry.layer_types() for case in entry.cases]
LAYER_CASES = [(e, c) for e, c in CASES if not issubclass(e.cls, nn.Loss)]
LOSS_CASES = [(e, c) for e, c in CASES if issubclass(e.cls, nn.Loss)]


def _ids(cases):
    return [case.label for _, case in cases]


def _input(case, rng):
    return case.make_input(rng) if case.make_input else rng.standard_normal(case.shape) * case.scale


def _drop_caches(layer) -> None:
    for m in layer.modules():
        m.__dict__.pop("_cache", None)


def _assert_matrix(rel_error, columns: dict[str, list[np.ndarray]], names: list[str], case: str) -> None:
    """Every pair of methods agrees on every tensor; the failure message is the whole matrix."""
    lines, ok = [], True
    for i, tensor in enumerate(names):
        for a, b in combinations(columns, 2):
            err = rel_error(columns[a][i], columns[b][i])
            ok &= err <= TOL
            lines.append(f"  {tensor:<10} {a:>12} vs {b:<12} {err:.2e}{'' if err <= TOL else '  FAIL'}")
    assert ok, f"{case}: gradients disagree (rel. error > {TOL})\n" + "\n".join(lines)


@pytest.mark.parametrize("entry,case", LAYER_CASES, ids=_ids(LAYER_CASES))
def test_layer_backward_trust_matrix(torch, rel_error, entry, case):
    rng = np.random.default_rng(42)
    layer = entry.instance(case)
    params = layer.parameters()
    x = _input(case, rng)
    r = rng.standard_normal(np.shape(layer(x)))  # the objective is sum(layer(x) * r)
    _drop_caches(layer)

    layer.zero_grad()
    out = layer(x)
    assert out.dtype == np.float64
    hand = [layer.backward(r, input_grad=True)] + [p.grad.copy() for p in params]

    auto = autograd_grads(layer, x, grad_output=r)
    np.testing.assert_allclose(auto.output, out, rtol=1e-12, atol=1e-15)

    def objective() -> float:
        value = float(np.vdot(layer(x), r))
        _drop_caches(layer)
        return value
    numeric = [numerical_grad(objective, a) for a in [x] + [p.data for p in params]]

    tx = [torch.tensor(a, requires_grad=True) for a in [x] + [p.data for p in params]]
    tout = torch_forward(layer)(*tx)
    np.testing.assert_allclose(tout.detach().numpy(), out, rtol=1e-12, atol=1e-15)
    tout.backward(torch.tensor(r))

    names = ["input"] + [n for n, _ in layer.named_parameters()]
    _assert_matrix(rel_error, {"hand": hand, "autograd": [auto.grad_input] + auto.grad_params,
                    "central": numeric, "torch": [t.grad.numpy() for t in tx]}, names, case.label)


@pytest.mark.parametrize("entry,case", LOSS_CASES, ids=_ids(LOSS_CASES))
def test_loss_backward_trust_matrix(torch, rel_error, entry, case):
    rng = np.random.default_rng(7)
    crit = entry.instance(case)
    out = _input(case, rng)
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
    tloss = torch_forward(crit)(tout, target)
    assert tloss.item() == pytest.approx(value, rel=1e-12)
    tloss.backward()
    _assert_matrix(rel_error, {"hand": [hand], "autograd": [auto.grad_input], "central": [numeric],
                    "torch": [tout.grad.numpy()]}, ["output"], case.label)


def test_every_exported_layer_and_loss_is_registered_with_cases_and_twins():
    """A new layer in handprop.nn must register, with trust cases and both reference forwards."""
    for name in nn.__all__:
        obj = getattr(nn, name)
        if inspect.isclass(obj) and issubclass(obj, (nn.Module, nn.Loss)) and obj not in (nn.Module, nn.Loss):
            entry = registry.lookup(obj)
            assert entry.cls is obj, f"{name} is not registered itself (only a base class is)"
            assert entry.cases, f"{name} has no trust cases"
            assert entry.tensor is not None and entry.torch is not None, f"{name} lacks a reference forward"


def test_tensor_forward_rejects_unregistered_layers():
    class Mystery(nn.Module):
        pass

    with pytest.raises(TypeError, match="Mystery is not a registered layer type"):
        tensor_forward(Mystery())
