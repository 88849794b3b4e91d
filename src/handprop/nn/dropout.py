"""Dropout: in training, zero each input with probability p and scale the rest by 1/(1-p).

Inverted dropout (as PyTorch): the expected output equals the input, so evaluation is the
identity and needs no rescaling. The mask comes from ``rng=`` or handprop's seeded generator.
"""
from __future__ import annotations

from numbers import Real

import numpy as np

from .._random import resolve_rng
from .module import Module
from .registry import Arg, Case, OnnxExport, TorchModule, register


def _identity_twin(layer: Dropout):
    """The reference forward (Tensor or torch operands alike) where dropout is the identity: p=0
    or eval mode. With p > 0 it would need the hand-written forward's random mask, so it refuses;
    tests/nn/test_dropout.py checks that case against the mask the forward drew."""
    if layer.training and layer.p > 0:
        raise ValueError(f"{layer!r}: the reference forwards are defined for p=0 or eval mode only (the mask is random)")
    return lambda x: x * 1.0


@register(args=(Arg("p", float),), tensor=_identity_twin, torch=lambda torch, layer: _identity_twin(layer),
          cases=[Case("Dropout(p=0)", (6, 7), {"p": 0.0})], torch_module=TorchModule("Dropout", ignored=("inplace",)),
          onnx=OnnxExport(lambda layer, g, x: g.op("Identity", x)))  # eval mode: the identity
class Dropout(Module):
    """Zero each element with probability ``p`` in training (scaling the kept ones by 1/(1-p));
    the identity in eval mode. ``rng`` is a Generator or seed for the masks (default: handprop's
    generator, see ``handprop.manual_seed``)."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None):
        if isinstance(p, bool) or not isinstance(p, Real) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self._rng = None if rng is None else resolve_rng(rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{self!r} expected floating-point input, got {x.dtype}")
        if not self.training:
            return x
        # uniform float32 draws (half the bits of float64, for any input dtype): P(u >= p) = 1 - p
        keep = (self._rng or resolve_rng(None)).random(x.shape, dtype=np.float32) >= np.float32(self.p)
        self._save(keep)
        out = np.multiply(x, keep, dtype=x.dtype)
        out *= x.dtype.type(1 / (1 - self.p))
        return out

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (keep,) = self._saved()
        if grad_output.shape != keep.shape:
            raise ValueError(f"{self!r}.backward expected grad_output of shape {keep.shape}, got {grad_output.shape}")
        if not input_grad:
            return None
        grad = np.multiply(grad_output, keep, dtype=grad_output.dtype)
        grad *= grad_output.dtype.type(1 / (1 - self.p))
        return grad

    def extra_repr(self) -> str:
        return f"p={self.p}"
