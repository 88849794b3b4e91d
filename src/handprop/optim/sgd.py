"""Stochastic gradient descent with PyTorch's momentum, Nesterov and weight-decay rules."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ..nn.blas import axpy
from ..nn.module import Parameter
from .optimizer import Optimizer, _check_nonnegative


def sgd_update(param: np.ndarray, grad: np.ndarray, state: dict, lr: float, momentum: float,
               dampening: float, nesterov: bool, weight_decay: float) -> None:
    """One in-place SGD update of ``param`` (PyTorch's ``torch.optim.SGD`` rule)::

        g = grad + weight_decay * param
        buf = g (first step) or momentum * buf + (1 - dampening) * g
        d = g + momentum * buf (nesterov) or buf
        param -= lr * d
    """
    d = grad
    if weight_decay:
        d = grad + weight_decay * param
    if momentum:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = np.array(d, copy=True)
        else:
            buf *= momentum
            buf += (1 - dampening) * d if dampening else d
        d = d + momentum * buf if nesterov else buf
    axpy(-lr, d, param)  # param -= lr * d in one pass (BLAS axpy on large arrays)


class SGD(Optimizer):
    """``SGD(params, lr, momentum=0, dampening=0, nesterov=False, weight_decay=0)``."""

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        for name, value in (("momentum", momentum), ("dampening", dampening), ("weight_decay", weight_decay)):
            _check_nonnegative(self, name, value)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum requires momentum > 0 and dampening = 0")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.nesterov, self.weight_decay = bool(nesterov), float(weight_decay)

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def state_fields(self) -> dict[str, str]:
        return {"momentum_buffer": "param"} if self.momentum else {}

    def step(self) -> None:
        if not (self.momentum or self.weight_decay):  # plain SGD: each update one axpy, no call per parameter
            for p in self.params:
                axpy(-self.lr, p.grad, p.data)
            return
        for p in self.params:
            sgd_update(p.data, p.grad, self.state[p], self.lr, self.momentum,
                       self.dampening, self.nesterov, self.weight_decay)
