"""Elementwise activations with hand-written backward passes."""
from __future__ import annotations

import numpy as np

from . import functional as F
from .module import Module


class _Elementwise(Module):
    """An activation: same shape in and out, no parameters."""

    def _check_grad(self, grad_output: np.ndarray, saved: np.ndarray) -> None:
        if grad_output.shape != saved.shape:
            raise ValueError(f"{self!r}.backward expected grad_output of shape {saved.shape}, "
                             f"got {grad_output.shape}")


class ReLU(_Elementwise):
    """max(x, 0); gradient 1 where the input was positive, else 0."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # max(x, zeros) against a cached zero array of x's shape: NumPy's SIMD loop for two
        # arrays is 2x faster than its loop against a broadcast scalar 0 (same values).
        zeros = self.__dict__.get("_zeros")
        if zeros is None or zeros.shape != x.shape or zeros.dtype != x.dtype:
            if not (isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)):
                out = F.relu(x)
                self._save(out)
                return out
            zeros = self._zeros = np.zeros(x.shape, x.dtype)
        out = np.maximum(x, zeros)
        self._save(out)
        return out

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (out,) = self._saved()
        self._check_grad(grad_output, out)
        if not input_grad:
            return None
        # A multiply by the boolean mask, not np.where: 10x faster on large batches (np.where
        # branches per element on a random mask); same dtype as grad_output.
        return np.multiply(grad_output, out > 0, dtype=grad_output.dtype)


class LeakyReLU(_Elementwise):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = float(negative_slope)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(x)
        return F.leaky_relu(x, self.negative_slope)

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (x,) = self._saved()
        self._check_grad(grad_output, x)
        if not input_grad:
            return None
        return np.where(x > 0, grad_output, grad_output * grad_output.dtype.type(self.negative_slope))

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GeneralReLU(_Elementwise):
    """fast.ai's GeneralRelu: (leaky) ReLU, minus ``sub`` (to re-centre the mean), clamped at ``maxv``."""

    def __init__(self, leak: float | None = None, sub: float | None = None, maxv: float | None = None):
        self.leak, self.sub, self.maxv = leak, sub, maxv

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = F.general_relu(x, self.leak, self.sub, self.maxv)
        self._save(x)
        return out

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (x,) = self._saved()
        self._check_grad(grad_output, x)
        if not input_grad:
            return None
        slope = grad_output.dtype.type(self.leak or 0.0)
        grad = np.where(x > 0, grad_output, grad_output * slope)
        if self.maxv is not None:
            # the clamp is flat only where it bites, strictly above maxv (PyTorch's clamp passes
            # the gradient at the boundary itself)
            grad[F.general_relu(x, self.leak, self.sub) > x.dtype.type(self.maxv)] = 0
        return grad

    def extra_repr(self) -> str:
        return f"leak={self.leak}, sub={self.sub}, maxv={self.maxv}"


class Tanh(_Elementwise):
    """tanh(x); gradient 1 - tanh(x)^2, from the saved output."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = F.tanh(x)
        self._save(out)
        return out

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (out,) = self._saved()
        self._check_grad(grad_output, out)
        return grad_output * (1 - out * out) if input_grad else None


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)); gradient s(1 - s), from the saved output."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = F.sigmoid(x)
        self._save(out)
        return out

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (out,) = self._saved()
        self._check_grad(grad_output, out)
        return grad_output * out * (1 - out) if input_grad else None
