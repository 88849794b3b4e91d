"""Flatten: merge the axes ``start_dim..end_dim`` into one, e.g. (N, C, H, W) -> (N, C*H*W) for a Linear."""
from __future__ import annotations

import math

import numpy as np

from .module import Module
from .registry import Arg, Case, OnnxExport, TorchModule, register


def _flatten_onnx(layer: Flatten, graph, x: str) -> str:
    """ONNX's Flatten for (N, ...) -> (N, features); otherwise a Reshape to the input's own shape
    (read at run time, so free axes stay free) with the axes start..end merged."""
    rank = graph.rank(x)
    start, end = layer.start_dim % rank, layer.end_dim % rank
    if (start, end) == (1, rank - 1):
        return graph.op("Flatten", x, axis=1, rank=2)
    shape = graph.op("Concat", graph.op("Shape", x, rank=1, end=start), np.array([-1], np.int64),
                     graph.op("Shape", x, rank=1, start=end + 1), axis=0)
    return graph.op("Reshape", x, shape, rank=rank - (end - start))


@register(args=(Arg("start_dim", int), Arg("end_dim", int)),
          tensor=lambda layer: lambda x: x.reshape(layer.output_shape(x.shape)),
          torch=lambda torch, layer: lambda x: torch.flatten(x, layer.start_dim, layer.end_dim),
          cases=[Case("Flatten", (2, 3, 4, 5)), Case("Flatten(1, 2)", (2, 3, 4, 5), {"start_dim": 1, "end_dim": 2})],
          onnx=OnnxExport(_flatten_onnx), torch_module=TorchModule("Flatten"))
class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W) by default, in PyTorch's (C, H, W) order, so a Linear after it
    takes the same weights as in PyTorch. Negative dims count from the end, as in PyTorch."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        for name, d in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
                raise ValueError(f"Flatten: {name} must be an integer, got {d!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape an input of ``shape`` flattens to; ValueError if the dims do not fit it."""
        nd = len(shape)
        if not (-nd <= self.start_dim < nd and -nd <= self.end_dim < nd) or self.start_dim % nd > self.end_dim % nd:
            raise ValueError(f"{self!r} cannot flatten an input of shape {shape}: "
                             f"dims {self.start_dim}..{self.end_dim} are out of range or in reverse order")
        start, end = self.start_dim % nd, self.end_dim % nd
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = x.reshape(self.output_shape(np.shape(x)))
        self._save(x.shape)
        return out

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (in_shape,) = self._saved()
        if grad_output.shape != self.output_shape(in_shape):
            raise ValueError(f"{self!r}.backward expected grad_output of shape {self.output_shape(in_shape)}, "
                             f"got {grad_output.shape}")
        return grad_output.reshape(in_shape) if input_grad else None

    def extra_repr(self) -> str:
        return "" if (self.start_dim, self.end_dim) == (1, -1) else f"start_dim={self.start_dim}, end_dim={self.end_dim}"
