"""Bridges between the two styles: Tensor code inside a Module, a Module inside Tensor code.

* :class:`TensorModule` turns a function of Tensors into a layer with the hand-written
  contract (``forward`` caches, ``backward`` returns dL/dx and adds into ``p.grad``), so
  ``Sequential(Linear(784, 50), TensorModule(lambda x: x.relu()), Linear(50, 10))`` trains.
* :class:`TensorLoss` does the same for a loss ``fn(output, target) -> scalar Tensor``.
* :func:`apply_module` runs a hand-written layer on a Tensor as one graph node.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..nn.loss import Loss
from ..nn.module import Module, Parameter
from ..nn.registry import register
from . import grad_mode
from .grad_mode import no_grad
from .tensor import Tensor, _result

__all__ = ["TensorModule", "TensorLoss", "apply_module"]


@register(args=None, tensor=lambda layer: layer.forward_tensor)
class TensorModule(Module):
    """A layer whose forward is written with Tensor ops and whose backward is autograd.

    Either pass ``fn(x, *params) -> Tensor`` and the Parameters it uses::

        lin = TensorModule(lambda x, w, b: x @ w + b, [Parameter(w0), Parameter(b0)])
        act = TensorModule(lambda x: x.relu())

    or subclass, create Parameters as attributes and implement ``forward_tensor(x, *params)``;
    ``params`` are Tensors sharing memory with ``self.parameters()``, in that order.

    Forward records a graph only in training mode with grad mode on; in ``eval()`` or under
    ``no_grad()`` it just computes (and backward then raises, as for any Module).
    """

    def __init__(self, fn: Callable[..., Tensor] | None = None, params: Iterable[Parameter] = (),
                 name: str | None = None):
        self.fn = fn
        self.params = list(params)
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"TensorModule: params[{i}] is {type(p).__name__}, not a Parameter")
        self.name = name or getattr(fn, "__name__", None)

    def forward_tensor(self, x: Tensor, *params: Tensor) -> Tensor:
        if self.fn is None:
            raise NotImplementedError(f"{type(self).__name__}: pass fn= or override forward_tensor")
        return self.fn(x, *params)

    def forward(self, x: np.ndarray) -> np.ndarray:
        params = self.parameters()
        if not (self.training and grad_mode.is_grad_enabled()):
            with no_grad():
                return _check_output(self, self.forward_tensor(Tensor(x), *[Tensor(p.data) for p in params])).data
        xt = Tensor(x, requires_grad=True)
        pts = [Tensor(p.data, requires_grad=True) for p in params]  # shares memory with p.data
        out = _check_output(self, self.forward_tensor(xt, *pts))
        self._save(xt, pts, out)
        return out.data

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        xt, pts, out = self._saved()
        if grad_output.shape != out.shape:
            raise ValueError(f"{self!r}.backward expected grad_output of shape {out.shape}, "
                             f"got {grad_output.shape}")
        xt.requires_grad = input_grad  # the matmul backward skips dL/dx when nobody wants it
        if out.requires_grad:
            out.backward(grad_output)
        for p, t in zip(self.parameters(), pts):
            if t.grad is not None:
                p.grad += t.grad
        if not input_grad:
            return None
        return xt.grad if xt.grad is not None else np.zeros_like(xt.data)

    def extra_repr(self) -> str:
        return self.name if self.name and self.name != "<lambda>" else ""


@register(args=None, tensor=lambda crit: crit.fn)
class TensorLoss(Loss):
    """A loss written with Tensor ops: ``crit = TensorLoss(lambda out, t: ((out - t) ** 2).mean())``.

    ``crit(output, target)`` returns a float, ``crit.backward()`` returns dLoss/doutput.
    """

    def __init__(self, fn: Callable[[Tensor, np.ndarray], Tensor], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None)

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        out = Tensor(output, requires_grad=True)
        loss = self.fn(out, target)
        if loss.size != 1:
            raise ValueError(f"{self!r}: the loss function returned shape {loss.shape}, expected a scalar")
        self._save(out, loss)
        return float(loss.item())

    def backward(self) -> np.ndarray:
        out, loss = self._saved()
        if loss.requires_grad:
            loss.backward()
        return out.grad if out.grad is not None else np.zeros_like(out.data)

    def extra_repr(self) -> str:
        return self.name if self.name and self.name != "<lambda>" else ""


def apply_module(module: Module, x: Tensor) -> Tensor:
    """Run a hand-written layer on a Tensor, recorded as one graph node.

    Backward calls ``module.backward`` (which adds into its Parameters' ``.grad``, not into
    Tensor leaves), so a graph through it supports one backward per forward.
    """
    out = module(x.data)
    if not (x.requires_grad and grad_mode.is_grad_enabled()):
        return Tensor(out)
    return _result(out, (x,), lambda g: (module.backward(g, input_grad=True),), f"{type(module).__name__}Backward")


def _check_output(module: Module, out) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{module!r}: the Tensor function returned {type(out).__name__}, not a Tensor")
    return out
