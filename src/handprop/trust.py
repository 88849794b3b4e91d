"""The trust matrix behind ``handprop gradcheck``: every built-in layer and loss, its
hand-written gradient compared with central differences, autograd and PyTorch, in float64."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import nn
from .nn import registry
from .gradcheck import numerical_grad

#: Relative error (max |a - b| / max |b| over every gradient of the case) that counts as equal.
TOLERANCE = 1e-6


@dataclass
class TrustCase:
    """A float64 module (or loss) from a registration's case, and how to draw its input (and target)."""

    name: str
    module: nn.Module | nn.Loss
    make_input: Callable[[np.random.Generator], np.ndarray]
    make_target: Callable[[np.random.Generator], np.ndarray] | None = None


def builtin_cases() -> list[TrustCase]:
    """Every case of every registered layer and loss type (see :mod:`handprop.nn.registry`)."""
    cases = []
    for entry in registry.layer_types():
        for case in entry.cases:
            make_input = case.make_input or (lambda rng, c=case: rng.standard_normal(c.shape) * c.scale)
            cases.append(TrustCase(case.label, entry.instance(case), make_input, case.target))
    return cases


def _rel(actual: list[np.ndarray], expected: list[np.ndarray]) -> float:
    """The worst max|a - e| / max|e| over a case's gradients (input, then each parameter)."""
    worst = 0.0
    for a, e in zip(actual, expected, strict=True):
        scale = max(float(np.abs(e).max(initial=0.0)), 1e-300)
        worst = max(worst, float(np.abs(np.asarray(a) - e).max(initial=0.0)) / scale)
    return worst


def hand_written(case: TrustCase, x: np.ndarray, target, r) -> list[np.ndarray]:
    m = case.module
    if isinstance(m, nn.Loss):
        m(x, target)
        return [m.backward()]
    m.zero_grad()
    m(x)
    return [m.backward(r, input_grad=True), *(p.grad.copy() for p in m.parameters())]


def finite_differences(case: TrustCase, x: np.ndarray, target, r) -> list[np.ndarray]:
    m = case.module
    if isinstance(m, nn.Loss):
        return [numerical_grad(lambda: m.forward(x, target), x)]
    objective = lambda: float(np.vdot(m.forward(x), r))  # noqa: E731
    return [numerical_grad(objective, arr) for arr in (x, *(p.data for p in m.parameters()))]


def autograd(case: TrustCase, x: np.ndarray, target, r) -> list[np.ndarray]:
    from .autograd.reference import autograd_grads

    result = autograd_grads(case.module, x, grad_output=r, target=target)
    return [result.grad_input, *result.grad_params]


def pytorch(case: TrustCase, x: np.ndarray, target, r) -> list[np.ndarray]:
    import torch

    m = case.module
    xt = torch.tensor(x, requires_grad=True)
    if isinstance(m, nn.Loss):
        registry.torch_forward(m)(xt, target).backward()
        return [xt.grad.numpy()]
    params = [torch.tensor(p.data, requires_grad=True) for p in m.parameters()]
    registry.torch_forward(m)(xt, *params).backward(torch.tensor(r))
    return [t.grad.numpy() for t in (xt, *params)]


def trust_matrix(seed: int = 0) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    """Columns (reference names) and one row per case: the relative error against each reference
    (None where the reference is unavailable, e.g. PyTorch not installed)."""
    try:
        import torch  # noqa: F401
        references = [finite_differences, autograd, pytorch]
    except ImportError:
        references = [finite_differences, autograd, None]
    columns = ["central diff.", "autograd", "PyTorch"]
    rows = []
    for case in builtin_cases():
        rng = np.random.default_rng(seed)
        x = case.make_input(rng)
        target = case.make_target(rng) if case.make_target else None
        r = None if isinstance(case.module, nn.Loss) else rng.standard_normal(case.module.forward(x).shape)
        expected = hand_written(case, x, target, r)
        rows.append((case.name, [None if ref is None else _rel(expected, ref(case, x, target, r))
                                 for ref in references]))
    return columns, rows


def print_trust_report(seed: int = 0) -> int:
    """Print the matrix; exit status 1 if any gradient disagrees by more than TOLERANCE."""
    columns, rows = trust_matrix(seed)
    print(f"hand-written backward vs three references, float64 (relative error; ok <= {TOLERANCE:g})")
    print(f"{'layer / loss':<24}" + "".join(f"{c:>15}" for c in columns) + "  verdict")
    failures = 0
    for name, errors in rows:
        ok = all(e is None or e <= TOLERANCE for e in errors)
        failures += not ok
        cells = "".join(f"{'n/a':>15}" if e is None else f"{e:>15.1e}" for e in errors)
        print(f"{name:<24}{cells}  {'ok' if ok else 'MISMATCH'}")
    if any(e is None for _, errors in rows for e in errors):
        print("PyTorch is not installed: pip install torch==2.13.0 for the last column")
    print(f"{len(rows) - failures}/{len(rows)} layers and losses agree with every reference")
    return 0 if failures == 0 else 1
