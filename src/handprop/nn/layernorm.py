"""LayerNorm: each sample normalised over its trailing ``normalized_shape`` features.

The statistics are per sample, so training and evaluation compute the same thing (no running
statistics); ``elementwise_affine`` adds a weight and bias of ``normalized_shape``, as in PyTorch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .module import Module, Parameter
from .normalization import check_eps, normalize, normalize_backward, random_affine
from .registry import Arg, Case, OnnxExport, TorchModule, register


def _shape(value: Any, who: str) -> tuple[int, ...]:
    """``normalized_shape`` as a tuple of positive ints (an int means a 1-tuple), else a ValueError."""
    dims = (value,) if isinstance(value, (int, np.integer)) else value
    if not isinstance(dims, (tuple, list)) or not dims or any(
            isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0 for n in dims):
        raise ValueError(f"{who}: normalized_shape must be a positive integer or a non-empty list of them, "
                         f"got {value!r}")
    return tuple(int(n) for n in dims)


@dataclass(frozen=True)
class _ShapeArg(Arg):
    """A model-file argument that is a shape: a positive int or a list of them (JSON has no tuple)."""

    def check(self, value: Any, where: str) -> tuple[int, ...]:
        return _shape(value, where)


def _tensor_twin(layer: LayerNorm):
    def layer_norm(x, *affine):
        axes = tuple(range(-len(layer.normalized_shape), 0))
        out = (x - x.mean(axis=axes, keepdims=True)) / (x.var(axis=axes, keepdims=True) + layer.eps) ** 0.5
        if affine:
            weight, bias = affine
            out = out * weight + bias
        return out
    return layer_norm


def _torch_twin(torch, layer: LayerNorm):
    return lambda x, *affine: torch.nn.functional.layer_norm(x, layer.normalized_shape, *affine, eps=layer.eps)


def _onnx_twin(layer: LayerNorm, graph, x: str) -> str:
    """LayerNormalization over the trailing axes (ones stand in for the scale ONNX requires)."""
    affine = (layer.weight.data, layer.bias.data) if layer.elementwise_affine else (np.ones(layer.normalized_shape),)
    return graph.op("LayerNormalization", x, *affine, axis=-len(layer.normalized_shape), epsilon=layer.eps)


def _case(normalized_shape, seed: int):
    return random_affine(lambda: LayerNorm(normalized_shape, dtype=np.float64), seed)


@register(args=(_ShapeArg("normalized_shape", "shape", read=lambda layer: list(layer.normalized_shape)),
                Arg("eps", float), Arg("elementwise_affine", bool)),
          tensor=_tensor_twin, torch=_torch_twin, torch_module=TorchModule("LayerNorm", ("normalized_shape",)),
          onnx=OnnxExport(_onnx_twin, input_shape=lambda layer: layer.normalized_shape),
          cases=[
    Case("LayerNorm(5)", (6, 5), make=_case(5, 1), scale=2),
    Case("LayerNorm((3, 4))", (2, 5, 3, 4), make=_case((3, 4), 2)),
    Case("LayerNorm(affine=False)", (4, 3, 7), {"normalized_shape": 7, "elementwise_affine": False}, scale=3)])
class LayerNorm(Module):
    """Normalise the trailing ``normalized_shape`` axes of each sample: input (..., *normalized_shape)."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
                 dtype: np.dtype | type = np.float32):
        self.normalized_shape = _shape(normalized_shape, "LayerNorm")
        self.eps = check_eps("LayerNorm", eps)
        if not isinstance(elementwise_affine, bool):
            raise ValueError(f"LayerNorm: elementwise_affine must be True or False, got {elementwise_affine!r}")
        self.elementwise_affine = elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype)) if elementwise_affine else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k:] != self.normalized_shape:
            raise ValueError(f"{self!r} expected input (..., {', '.join(map(str, self.normalized_shape))}), "
                             f"got {x.shape}")
        if self.elementwise_affine and x.dtype != self.weight.dtype:
            raise ValueError(f"{self!r} expected {self.weight.dtype} input, got {x.dtype} "
                             f"(convert with x.astype(np.{self.weight.dtype}) or model.to(np.{x.dtype}))")
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{self!r} expected floating-point input, got {x.dtype}")
        xhat, inv_std, _, _ = normalize(x, tuple(range(-k, 0)), self.eps)
        self._save(xhat, inv_std)
        return xhat * self.weight.data + self.bias.data if self.elementwise_affine else xhat

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        xhat, inv_std = self._saved()
        if grad_output.shape != xhat.shape:
            raise ValueError(f"{self!r}.backward expected grad_output of shape {xhat.shape}, got {grad_output.shape}")
        k = len(self.normalized_shape)
        if self.elementwise_affine:
            batch_axes = tuple(range(xhat.ndim - k))
            self.bias.accumulate_grad(np.sum(grad_output, axis=batch_axes))
            self.weight.accumulate_grad(np.sum(grad_output * xhat, axis=batch_axes))
        if not input_grad:
            return None
        grad_xhat = grad_output * self.weight.data if self.elementwise_affine else grad_output
        axes = tuple(range(-k, 0))
        return normalize_backward(grad_xhat, xhat, inv_std, np.mean(grad_xhat, axis=axes, keepdims=True),
                                  np.mean(grad_xhat * xhat, axis=axes, keepdims=True))

    def extra_repr(self) -> str:
        shape = self.normalized_shape[0] if len(self.normalized_shape) == 1 else self.normalized_shape
        text = str(shape)
        if self.eps != 1e-5:
            text += f", eps={self.eps}"
        return text if self.elementwise_affine else text + ", elementwise_affine=False"
