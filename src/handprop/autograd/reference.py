"""Autograd's column of the trust matrix: a layer's gradients through its Tensor reference forward.

Every registered layer and loss declares its forward in Tensor ops beside its class (see
:mod:`handprop.nn.registry`); :func:`autograd_grads` runs that forward on Tensors and lets the
backward walk supply gradients that share no code with the hand-written backward.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..nn.loss import Loss
from ..nn.module import Module
from ..nn.registry import tensor_forward, torch_forward
from .tensor import Tensor

__all__ = ["tensor_forward", "torch_forward", "autograd_grads", "AutogradResult"]


class AutogradResult(NamedTuple):
    output: np.ndarray | float     # the forward value (a float for losses)
    grad_input: np.ndarray         # dL/dx (dL/doutput for a loss)
    grad_params: list[np.ndarray]  # dL/dp in ``layer.parameters()`` order (empty for losses)


def autograd_grads(layer: Module | Loss, x: np.ndarray, grad_output: np.ndarray | None = None,
                   target: np.ndarray | None = None) -> AutogradResult:
    """Gradients of ``layer`` at ``x`` computed by autograd through its Tensor reference forward.

    For a layer the objective is ``sum(layer(x) * grad_output)`` (``grad_output`` defaults to
    ones); for a loss (``target`` required) it is the loss itself. The layer is not modified.
    """
    f = tensor_forward(layer)
    xt = Tensor(x, requires_grad=True)
    if isinstance(layer, Loss):
        if target is None:
            raise ValueError(f"autograd_grads: {type(layer).__name__} is a loss and needs target=")
        loss = f(xt, np.asarray(target))
        loss.backward()
        return AutogradResult(loss.item(), _grad(xt), [])
    pts = [Tensor(p.data, requires_grad=True) for p in layer.parameters()]
    out = f(xt, *pts)
    out.backward(np.ones_like(out.data) if grad_output is None else grad_output)
    return AutogradResult(out.data, _grad(xt), [_grad(t) for t in pts])


def _grad(t: Tensor) -> np.ndarray:
    return t.grad if t.grad is not None else np.zeros_like(t.data)
