"""Reverse-mode autodiff over NumPy arrays, and bridges to the hand-written Module contract.

>>> from handprop.autograd import Tensor, no_grad
>>> w = Tensor([[0.5], [-1.0]], requires_grad=True)
>>> loss = (Tensor([[1.0, 2.0]]) @ w).relu().sum()
>>> loss.backward()
"""
from . import ops  # noqa: F401  (makes the operations Tensor methods)
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .module import TensorLoss, TensorModule, apply_module
from .reference import autograd_grads, tensor_forward, torch_forward
from .tensor import Tensor

__all__ = [
    "Tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "TensorModule", "TensorLoss", "apply_module",
    "tensor_forward", "torch_forward", "autograd_grads",
]
