"""Linear: y = x @ W + b with W stored (in_features, out_features), as in the notebooks' ``lin``."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .._random import resolve_rng
from . import functional as F
from . import init as _init
from .module import Module, Parameter
from .registry import Arg, Case, OnnxExport, TorchModule, register

#: ``Linear(init=...)`` by name: each fills the weight in place given (weight, nonlinearity, rng).
INITS: dict[str, Callable] = {
    "default": lambda w, nl, rng: _init.kaiming_uniform_(w, a=math.sqrt(5), rng=rng),
    "kaiming_uniform": lambda w, nl, rng: _init.kaiming_uniform_(w, nonlinearity=nl, rng=rng),
    "kaiming_normal": lambda w, nl, rng: _init.kaiming_normal_(w, nonlinearity=nl, rng=rng),
    "xavier_uniform": lambda w, nl, rng: _init.xavier_uniform_(w, _init.calculate_gain(nl), rng=rng),
    "xavier_normal": lambda w, nl, rng: _init.xavier_normal_(w, _init.calculate_gain(nl), rng=rng),
}


def _affine(x, weight, bias=None):
    """The reference forward (Tensor or torch operands alike): x @ W (+ b)."""
    return x @ weight if bias is None else x @ weight + bias


def _transpose_weight(layer: Linear, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch stores the weight (out, in), handprop (in, out): the same transpose both ways."""
    return {**state, "weight": state["weight"].T}


def _onnx_linear(layer: Linear, graph, x: str) -> str:
    """Gemm on (N, in) inputs (the weight in handprop's (in, out) layout: transB=0), else MatMul + Add."""
    bias = () if layer.bias is None else (layer.bias.data,)
    if graph.rank(x) == 2:
        return graph.op("Gemm", x, layer.weight.data, *bias)
    y = graph.op("MatMul", x, layer.weight.data)
    return graph.op("Add", y, *bias) if bias else y


@register(args=(Arg("in_features", int, size=True), Arg("out_features", int, size=True),
                Arg("bias", bool, read=lambda layer: layer.bias is not None)),
          tensor=lambda layer: _affine, torch=lambda torch, layer: _affine,
          torch_module=TorchModule("Linear", positional=("in_features", "out_features"),
                                   to_torch=_transpose_weight, from_torch=_transpose_weight),
          onnx=OnnxExport(_onnx_linear, input_shape=lambda layer: (layer.in_features,)),
          cases=[Case("Linear(7 -> 4)", (6, 7), {"in_features": 7, "out_features": 4, "rng": 1}),
                 Case("Linear(bias=False)", (4, 5), {"in_features": 5, "out_features": 3, "bias": False, "rng": 0}),
                 Case("Linear(3-d input)", (2, 4, 5), {"in_features": 5, "out_features": 3, "rng": 1})])
class Linear(Module):
    """Affine layer. Input (..., in_features) -> output (..., out_features).

    ``init`` is a name from :data:`INITS` (``"default"`` is PyTorch's: kaiming_uniform with
    a=sqrt(5) and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))) or a callable
    ``init(weight, bias, rng)`` that fills the arrays in place. Named inits other than the
    default zero the bias and use the gain of ``nonlinearity``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: str | Callable = "default", nonlinearity: str = "relu",
                 dtype: np.dtype | type = np.float32, rng: np.random.Generator | int | None = None):
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"Linear: {name} must be a positive integer, got {n!r}")
        if not (callable(init) or init in INITS):
            raise ValueError(f"Linear: unknown init {init!r}; expected one of {', '.join(INITS)} or a callable")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((self.in_features, self.out_features), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype=dtype)) if bias else None
        self.reset_parameters(init, nonlinearity, rng)

    def reset_parameters(self, init: str | Callable = "default", nonlinearity: str = "relu",
                         rng: np.random.Generator | int | None = None) -> None:
        """(Re)draw the weights and bias from ``init``."""
        rng = resolve_rng(rng)
        b = self.bias.data if self.bias is not None else None
        if callable(init):
            init(self.weight.data, b, rng)
            return
        INITS[init](self.weight.data, nonlinearity, rng)
        if b is not None:
            if init == "default":
                bound = 1 / math.sqrt(self.in_features)
                _init.uniform_(b, -bound, bound, rng=rng)
            else:
                _init.zeros_(b)

    def forward(self, x: np.ndarray) -> np.ndarray:
        w = self.weight.data
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expected input (..., {self.in_features}), got {x.shape}")
        if x.dtype != w.dtype:
            raise ValueError(f"{self!r} expected {w.dtype} input, got {x.dtype} "
                             f"(convert with x.astype(np.{w.dtype}) or model.to(np.{x.dtype}))")
        out = F.linear(x, w, self.bias.data if self.bias is not None else None)
        self._save(x)
        return out

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (x,) = self._saved()
        if grad_output.shape != (*x.shape[:-1], self.out_features):  # a reshape would hide it
            raise ValueError(f"{self!r}.backward expected grad_output of shape "
                             f"{(*x.shape[:-1], self.out_features)}, got {grad_output.shape}")
        g2 = grad_output.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        # dL/dW = x^T g and dL/db = sum of g over the batch, added to the gradients.
        self.weight.accumulate_matmul(x2.T, g2)
        if self.bias is not None:
            self.bias.accumulate_grad(F.sum_rows(g2))
        return grad_output @ self.weight.data.T if input_grad else None

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}" + ("" if self.bias is not None else ", bias=False")
