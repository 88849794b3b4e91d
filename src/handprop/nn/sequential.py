"""Sequential: layers applied in order; backward walks them in reverse."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .activation import ReLU
from .linear import Linear
from .loss import Loss
from .module import Module
from .registry import Arg, Case, OnnxExport, TorchModule, chain, register, tensor_forward, torch_forward


def _chain_of(forward):
    return lambda seq: chain([forward(layer) for layer in seq], [len(layer.parameters()) for layer in seq])


def _onnx_chain(seq: Sequential, graph, x: str) -> str:
    for name, layer in seq.named_children():
        x = graph.layer(layer, x, name)
    return x


def _mlp() -> Sequential:
    return Sequential(Linear(7, 5, dtype=np.float64, rng=2), ReLU(), Linear(5, 3, dtype=np.float64, rng=3))


@register(args=(Arg("layers", "layers"),), tensor=_chain_of(tensor_forward),
          torch=lambda torch, seq: _chain_of(torch_forward)(seq),
          cases=[Case("MLP 7-5-3", (6, 7), make=_mlp)], torch_module=TorchModule("Sequential"),
          onnx=OnnxExport(_onnx_chain))
class Sequential(Module):
    """Layers applied in order; backward walks them in reverse.

    A Sequential is usually a whole model, fed a batch nobody differentiates: its backward
    returns dL/dx only when asked (``input_grad=True``; PyTorch computes it only for an input
    with ``requires_grad``). By default the first layer is told to skip that product (the first
    Linear's ``grad @ W.T``, as large as its forward), so the README loop
    ``model.backward(loss_fn.backward())`` pays for nothing it does not use. Inner layers get
    ``input_grad=True``, so a Sequential nested in a Sequential is asked correctly.
    """

    def __init__(self, *layers: Module):
        for i, layer in enumerate(layers):
            if isinstance(layer, Loss):
                raise TypeError(f"Sequential: argument {i} is {type(layer).__name__}, a loss; apply it to "
                                "the model's output instead (loss = crit(model(x), y))")
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: argument {i} is {type(layer).__name__}, not a Module")
        self.layers = list(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, grad_output: np.ndarray, input_grad: bool = False) -> np.ndarray | None:
        """Add every layer's parameter gradients; return dL/dx only when ``input_grad``, else None."""
        g = grad_output
        for i in range(len(self.layers) - 1, -1, -1):
            g = self.layers[i].backward(g, input_grad or i > 0)
        return g

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)
