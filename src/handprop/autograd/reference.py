"""The forward of every built-in layer and loss written with Tensor ops: autograd's reference.

``tensor_forward(layer)`` returns a function computing the same forward as ``layer`` with
Tensor operations, so autograd supplies an independent backward to compare with the
hand-written one (the trust matrix of ``tests/autograd/test_trust_matrix.py`` and
``handprop gradcheck``):

* a layer gives ``f(x, *params) -> Tensor`` with ``params`` in ``layer.parameters()`` order;
* a loss gives ``f(output, target) -> scalar Tensor`` (``target`` is a plain ndarray).

New layer types join with ``@register(MyLayer)`` on a builder ``layer -> f``.

``torch_forward(layer)`` is the same forward in PyTorch (imported lazily), with the same
calling convention on ``torch.Tensor`` arguments: the fourth column of the matrix.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .. import nn
from .module import TensorLoss, TensorModule
from .tensor import Tensor

__all__ = ["tensor_forward", "torch_forward", "autograd_grads", "register", "AutogradResult"]

_BUILDERS: dict[type, Callable[[object], Callable[..., Tensor]]] = {}


def register(cls: type) -> Callable:
    """Decorator: ``@register(MyLayer)`` on ``builder(layer) -> tensor function``."""
    def deco(builder):
        _BUILDERS[cls] = builder
        return builder
    return deco


def tensor_forward(layer: nn.Module) -> Callable[..., Tensor]:
    """The Tensor-op version of ``layer``'s forward (dispatch on its type, subclasses included)."""
    for klass in type(layer).__mro__:
        if klass in _BUILDERS:
            return _BUILDERS[klass](layer)
    known = ", ".join(sorted(c.__name__ for c in _BUILDERS))
    raise TypeError(f"tensor_forward: no Tensor reference for {type(layer).__name__} (known: {known})")


class AutogradResult(NamedTuple):
    output: np.ndarray | float     # the forward value (a float for losses)
    grad_input: np.ndarray         # dL/dx (dL/doutput for a loss)
    grad_params: list[np.ndarray]  # dL/dp in ``layer.parameters()`` order (empty for losses)


def autograd_grads(layer: nn.Module, x: np.ndarray, grad_output: np.ndarray | None = None,
                   target: np.ndarray | None = None) -> AutogradResult:
    """Gradients of ``layer`` at ``x`` computed by autograd through :func:`tensor_forward`.

    For a layer the objective is ``sum(layer(x) * grad_output)`` (``grad_output`` defaults to
    ones); for a loss (``target`` required) it is the loss itself. The layer is not modified.
    """
    f = tensor_forward(layer)
    xt = Tensor(x, requires_grad=True)
    if _is_loss(layer):
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


def _is_loss(layer) -> bool:
    return isinstance(layer, (nn.Loss, TensorLoss))


def _reduce(total: Tensor, reduction: str) -> Tensor:
    return total.mean() if reduction == "mean" else total.sum()


# -- layers ----------------------------------------------------------------------------------------
@register(nn.Linear)
def _linear(layer):
    def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        out = x @ weight
        return out if bias is None else out + bias
    return linear


@register(nn.ReLU)
def _relu(layer):
    return lambda x: x.relu()


@register(nn.LeakyReLU)
def _leaky_relu(layer):
    return lambda x: x.leaky_relu(layer.negative_slope)


@register(nn.GeneralReLU)
def _general_relu(layer):
    leak, sub, maxv = layer.leak, layer.sub, layer.maxv

    def general_relu(x: Tensor) -> Tensor:
        out = x.leaky_relu(leak) if leak else x.relu()
        if sub is not None:
            out = out - sub
        if maxv is not None:
            out = out.clamp(max=maxv)
        return out
    return general_relu


@register(nn.Tanh)
def _tanh(layer):
    return lambda x: x.tanh()


@register(nn.Sigmoid)
def _sigmoid(layer):
    return lambda x: x.sigmoid()


@register(nn.LogSoftmax)
def _log_softmax(layer):
    return lambda x: x.log_softmax(axis=-1)


@register(nn.Sequential)
def _sequential(seq):
    fns = [tensor_forward(layer) for layer in seq.layers]
    counts = [len(layer.parameters()) for layer in seq.layers]

    def sequential(x: Tensor, *params: Tensor) -> Tensor:
        i = 0
        for f, n in zip(fns, counts):
            x = f(x, *params[i:i + n])
            i += n
        return x
    return sequential


@register(TensorModule)
def _tensor_module(layer):
    return layer.forward_tensor


# -- losses --------------------------------------------------------------------------------------
@register(nn.MSELoss)
def _mse(crit):
    def mse(output: Tensor, target: np.ndarray) -> Tensor:
        target = np.asarray(target)
        pred = output
        if output.ndim == 2 and output.shape[1] == 1 and target.shape == output.shape[:1]:
            pred = output[:, 0]  # the notebooks' (N, 1) output vs (N,) target
        return _reduce((pred - target.astype(output.dtype)) ** 2, crit.reduction)
    return mse


@register(nn.NLLLoss)
def _nll(crit):
    def nll(log_probs: Tensor, target: np.ndarray) -> Tensor:
        picked = log_probs[np.arange(log_probs.shape[0]), np.asarray(target)]
        return -_reduce(picked, crit.reduction)
    return nll


@register(nn.CrossEntropyLoss)
def _cross_entropy(crit):
    nll = _nll(crit)
    return lambda logits, target: nll(logits.log_softmax(axis=-1), target)


@register(TensorLoss)
def _tensor_loss(crit):
    return crit.fn


# -- the same forwards in PyTorch ---------------------------------------------------------------------
def torch_forward(layer: nn.Module) -> Callable:
    """The PyTorch version of a built-in layer's or loss's forward (same arguments, torch tensors).

    ``target`` of a loss stays a NumPy array. Raises TypeError for types without a PyTorch twin.
    """
    import torch

    F = torch.nn.functional
    if isinstance(layer, nn.Sequential):
        fns = [torch_forward(m) for m in layer.layers]
        counts = [len(m.parameters()) for m in layer.layers]

        def sequential(x, *params):
            i = 0
            for f, n in zip(fns, counts):
                x, i = f(x, *params[i:i + n]), i + n
            return x
        return sequential
    if isinstance(layer, nn.Linear):
        return lambda x, w, b=None: x @ w if b is None else x @ w + b
    if isinstance(layer, nn.GeneralReLU):
        leak, sub, maxv = layer.leak, layer.sub, layer.maxv

        def general_relu(x):
            out = F.leaky_relu(x, leak) if leak else torch.relu(x)
            out = out - sub if sub is not None else out
            return out.clamp(max=maxv) if maxv is not None else out
        return general_relu
    simple = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid,
              nn.LogSoftmax: lambda x: torch.log_softmax(x, -1)}
    if type(layer) in simple:
        return simple[type(layer)]
    if isinstance(layer, nn.LeakyReLU):
        return lambda x: F.leaky_relu(x, layer.negative_slope)
    if isinstance(layer, nn.MSELoss):
        def mse(output, target):
            t = torch.as_tensor(np.asarray(target), dtype=output.dtype)
            pred = output[:, 0] if output.ndim == 2 and output.shape[1] == 1 and t.shape == output.shape[:1] else output
            return F.mse_loss(pred, t, reduction=layer.reduction)
        return mse
    if isinstance(layer, nn.CrossEntropyLoss):
        return lambda output, target: F.cross_entropy(output, torch.as_tensor(np.asarray(target)),
                                                      reduction=layer.reduction)
    if isinstance(layer, nn.NLLLoss):
        return lambda output, target: F.nll_loss(output, torch.as_tensor(np.asarray(target)),
                                                 reduction=layer.reduction)
    raise TypeError(f"torch_forward: no PyTorch reference for {type(layer).__name__}")
