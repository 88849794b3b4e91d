"""Proving gradients: central differences in float64, and the notebooks' test helpers.

``gradcheck(module, x)`` perturbs every element of the input and of every parameter by ±eps,
measures the change of a scalar objective, and compares with the hand-written backward.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ._random import resolve_rng
from .nn.loss import Loss
from .nn.module import Module


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with central differences; the message is the table."""


@dataclass
class GradcheckRow:
    name: str
    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float
    passed: bool


@dataclass
class GradcheckReport:
    """One row per checked tensor (the input, each parameter): max abs/rel error and verdict."""

    target: str
    rows: list[GradcheckRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def __str__(self) -> str:
        lines = [f"gradcheck {self.target}",
                 f"  {'tensor':<16}{'shape':<16}{'max abs err':>13}{'max rel err':>13}  ok"]
        for r in self.rows:
            lines.append(f"  {r.name:<16}{str(r.shape):<16}{r.max_abs_error:>13.2e}{r.max_rel_error:>13.2e}"
                         f"  {'yes' if r.passed else 'NO'}")
        return "\n".join(lines)


def _compare(name: str, analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float) -> GradcheckRow:
    err = np.abs(analytic - numeric)
    rel = err / np.maximum(np.abs(numeric), np.finfo(np.float64).tiny)
    passed = bool(np.all(err <= atol + rtol * np.abs(numeric)))
    return GradcheckRow(name, numeric.shape, float(err.max(initial=0.0)),
                        float(np.where(err > atol, rel, 0.0).max(initial=0.0)), passed)


def numerical_grad(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d array by central differences, perturbing ``array`` in place (and restoring it)."""
    grad = np.zeros(array.shape, dtype=np.float64)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        up = f()
        flat[i] = orig - eps
        down = f()
        flat[i] = orig
        gflat[i] = (up - down) / (2 * eps)
    return grad


def gradcheck(fn_or_module: Module | Callable, *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-4, rng: np.random.Generator | int | None = 0,
              raise_on_failure: bool = True) -> GradcheckReport:
    """Check a layer, a loss, or a function of handprop Tensors against central differences.

    - a layer ``m``: the objective is ``sum(m(x) * r)`` for a fixed random ``r``; checks dx and
      every parameter gradient from ``m.backward(r, input_grad=True)``. The module is copied to float64 first.
    - a loss ``crit``: ``inputs`` are (output, target); checks ``crit.backward()`` against d/doutput.
    - a callable of :class:`handprop.Tensor` returning a scalar Tensor: checks its autograd for
      every floating-point input.
    Raises :class:`GradcheckError` with the table when any element is off by more than
    ``atol + rtol * |numeric|``; returns the :class:`GradcheckReport` otherwise.
    """
    inputs = tuple(np.array(x, dtype=np.float64) if _is_float(x) else np.asarray(x) for x in inputs)
    if isinstance(fn_or_module, Loss):
        report = _check_loss(fn_or_module, inputs, eps, atol, rtol)
    elif isinstance(fn_or_module, Module):
        report = _check_layer(fn_or_module, inputs, eps, atol, rtol, resolve_rng(rng))
    elif callable(fn_or_module):
        report = _check_function(fn_or_module, inputs, eps, atol, rtol)
    else:
        raise TypeError(f"gradcheck expects a Module, a Loss or a callable, got {type(fn_or_module).__name__}")
    if raise_on_failure and not report.passed:
        raise GradcheckError(f"gradient check failed (atol={atol}, rtol={rtol})\n{report}")
    return report


def _is_float(x: Any) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.floating)


def _check_layer(module: Module, inputs: tuple, eps: float, atol: float, rtol: float,
                 rng: np.random.Generator) -> GradcheckReport:
    m = copy.deepcopy(module).to(np.float64).train()
    (x,) = inputs
    def drop_caches() -> None:
        # every module in the tree (a container like Sequential keeps no cache of its own)
        for child in m.modules():
            child.__dict__.pop("_cache", None)

    r = rng.standard_normal(np.shape(m(x)))
    drop_caches()  # drop the probe's cache

    def objective() -> float:
        out = m(x)
        drop_caches()
        return float(np.vdot(out, r))

    m.zero_grad()
    m(x)
    gx = m.backward(r, input_grad=True)  # asked for: a Sequential returns dL/dx only then
    report = GradcheckReport(repr(module).replace("\n", " "))
    report.rows.append(_compare("input", gx, numerical_grad(objective, x, eps), atol, rtol))
    for name, p in m.named_parameters():
        report.rows.append(_compare(name, p.grad, numerical_grad(objective, p.data, eps), atol, rtol))
    return report


def _check_loss(crit: Loss, inputs: tuple, eps: float, atol: float, rtol: float) -> GradcheckReport:
    output, target = inputs
    crit(output, target)
    analytic = crit.backward()

    def objective() -> float:
        value = crit(output, target)
        crit.__dict__.pop("_cache", None)
        return value

    report = GradcheckReport(repr(crit))
    report.rows.append(_compare("output", analytic, numerical_grad(objective, output, eps), atol, rtol))
    return report


def _check_function(fn: Callable, inputs: tuple, eps: float, atol: float, rtol: float) -> GradcheckReport:
    from .autograd import Tensor, no_grad  # autograd is optional for layer checks

    tensors = [Tensor(x, requires_grad=_is_float(x)) for x in inputs]
    fn(*tensors).backward()
    report = GradcheckReport(getattr(fn, "__name__", repr(fn)))
    for i, t in enumerate(tensors):
        if not t.requires_grad:
            continue

        def objective() -> float:
            with no_grad():
                return float(fn(*[Tensor(s.data) for s in tensors]).data)

        analytic = t.grad if t.grad is not None else np.zeros_like(t.data)
        report.rows.append(_compare(f"input {i}", analytic, numerical_grad(objective, t.data, eps), atol, rtol))
    return report


def assert_close(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-8, name: str = "value") -> None:
    """Assert equal shapes and |actual - expected| <= atol + rtol*|expected| everywhere (fastcore's test_close)."""
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: shape {a.shape} != expected {e.shape}")
    err = np.abs(a.astype(np.float64) - e.astype(np.float64))
    if not np.all(err <= atol + rtol * np.abs(e)):
        # plain ints and Python scalars, so NumPy 2 prints (1,) and 2.1, not (np.int64(1),)
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape)) if err.size else ()
        raise AssertionError(f"{name}: max abs error {err.max():.3e} at index {worst} "
                             f"(actual {a[worst].item()!r}, expected {e[worst].item()!r}; rtol={rtol}, atol={atol})")


def assert_near_zero(value: Any, tol: float = 1e-3, name: str = "value") -> None:
    """Assert every |value| < tol (the notebooks' test_near_zero)."""
    v = np.abs(np.asarray(value, dtype=np.float64))
    if not np.all(v < tol):
        raise AssertionError(f"{name}: expected |x| < {tol}, got max |x| = {v.max():.3e}")
