"""Adam and AdamW (decoupled weight decay), PyTorch's update rules."""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, _check_nonnegative


def adam_update(param: np.ndarray, grad: np.ndarray, state: dict, lr: float, betas: tuple[float, float],
                eps: float, weight_decay: float, decoupled: bool, scratch: np.ndarray | None = None) -> None:
    """One in-place Adam(W) update (Kingma & Ba 2015; Loshchilov & Hutter 2019 for AdamW)::

        AdamW: param *= 1 - lr * weight_decay      Adam: g = grad + weight_decay * param
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    ``scratch``, an array like ``param``, holds the temporaries, so a step allocates nothing.
    """
    beta1, beta2 = betas
    if weight_decay:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param
    if "step" not in state:
        state["step"] = 0
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
    state["step"] += 1
    t = state["step"]
    m, v = state["exp_avg"], state["exp_avg_sq"]
    tmp = np.empty_like(param) if scratch is None else scratch
    m *= beta1
    m += np.multiply(grad, 1 - beta1, out=tmp)
    v *= beta2
    np.multiply(grad, grad, out=tmp)
    tmp *= 1 - beta2
    v += tmp
    denom = np.sqrt(v, out=tmp)
    denom /= math.sqrt(1 - beta2 ** t)
    denom += eps
    update = np.divide(m, denom, out=tmp)
    update *= lr / (1 - beta1 ** t)
    param -= update


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)`` (L2 added to the gradient)."""

    decoupled = False

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        _check_nonnegative(self, "eps", eps)
        _check_nonnegative(self, "weight_decay", weight_decay)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{type(self).__name__}: invalid betas {betas!r}, expected two numbers in [0, 1)")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self._scratch: dict[Parameter, np.ndarray] = {}  # temporaries, not state: never checkpointed

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}

    def state_fields(self) -> dict[str, str]:
        return {"step": "count", "exp_avg": "param", "exp_avg_sq": "param"}

    def step(self) -> None:
        for p in self.params:
            scratch = self._scratch.get(p)
            if scratch is None or scratch.dtype != p.data.dtype:
                scratch = self._scratch[p] = np.empty_like(p.data)
            adam_update(p.data, p.grad, self.state[p], self.lr, self.betas, self.eps,
                        self.weight_decay, self.decoupled, scratch)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``param *= 1 - lr * weight_decay`` before the Adam step."""

    decoupled = True

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
