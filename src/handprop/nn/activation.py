"""Elementwise activations (and LogSoftmax) with hand-written backward passes, each registered
with its Tensor reference, its PyTorch twin, its trust cases and its ``--activation`` name."""
from __future__ import annotations

import numpy as np

from . import functional as F
from .module import Module
from .registry import Activation, Arg, Case, OnnxExport, TorchModule, register


#: Largest input (elements) ReLU compares with a cached array of zeros rather than a scalar 0.
RELU_ZEROS_MAX_SIZE = 1 << 17


class _Elementwise(Module):
    """An activation: same shape in and out, no parameters."""

    def _check_grad(self, grad_output: np.ndarray, saved: np.ndarray) -> None:
        if grad_output.shape != saved.shape:
            raise ValueError(f"{self!r}.backward expected grad_output of shape {saved.shape}, "
                             f"got {grad_output.shape}")


@register(tensor=lambda layer: lambda x: x.relu(), torch=lambda torch, layer: torch.relu,
          cases=[Case("ReLU", (6, 7))], activation=Activation("relu", gain="relu"),
          torch_module=TorchModule("ReLU", ignored=("inplace",)), onnx=OnnxExport(lambda layer, g, x: g.op("Relu", x)))
class ReLU(_Elementwise):
    """max(x, 0); gradient 1 where the input was positive, else 0."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        # In training, max(x, zeros) against a cached zero array of x's shape and memory layout
        # (a Conv2d's output is channels-last memory): NumPy's SIMD loop for two arrays laid out
        # alike is 2x faster than its loop against a broadcast scalar 0 (same values) while both
        # fit in cache; above RELU_ZEROS_MAX_SIZE, reading the zeros costs more (512 x 512: 190 us
        # against 105; a cnn's 64 x 32 x 28 x 28: 2.0 ms against 1.6). Not in eval mode: inference
        # keeps nothing of a batch.
        zeros = self.__dict__.get("_zeros")
        if zeros is None or zeros.shape != x.shape or zeros.dtype != x.dtype or zeros.strides != x.strides:
            if not (self.training and isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)
                    and x.size <= RELU_ZEROS_MAX_SIZE):
                out = F.relu(x)
                self._save(out)
                return out
            zeros = self._zeros = np.zeros_like(x)
        out = np.maximum(x, zeros)
        self._save(out)
        return out

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (out,) = self._saved()
        self._check_grad(grad_output, out)
        if not input_grad:
            return None
        # The mask written as 0/1 in grad_output's dtype, then multiplied in place: two passes,
        # one array (np.where branches per element on a random mask: 10x slower; a boolean mask
        # multiplied with a cast: 1.1-1.3x slower).
        grad = np.greater(out, 0, out=np.empty_like(grad_output))
        return np.multiply(grad_output, grad, out=grad)


@register(args=(Arg("negative_slope", float),),
          tensor=lambda layer: lambda x: x.leaky_relu(layer.negative_slope),
          torch=lambda torch, layer: lambda x: torch.nn.functional.leaky_relu(x, layer.negative_slope),
          cases=[Case("LeakyReLU(0.1)", (6, 7), {"negative_slope": 0.1})],
          activation=Activation("leaky", {"negative_slope": 0.01}, gain="leaky_relu"),
          torch_module=TorchModule("LeakyReLU", ignored=("inplace",)),
          onnx=OnnxExport(lambda layer, g, x: g.op("LeakyRelu", x, alpha=layer.negative_slope)))
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


def _general_relu_reference(layer: GeneralReLU):
    def general_relu(x):
        out = x.leaky_relu(layer.leak) if layer.leak else x.relu()
        out = out - layer.sub if layer.sub is not None else out
        return out.clamp(max=layer.maxv) if layer.maxv is not None else out
    return general_relu


def _general_relu_torch(torch, layer: GeneralReLU):
    def general_relu(x):
        out = torch.nn.functional.leaky_relu(x, layer.leak) if layer.leak else torch.relu(x)
        out = out - layer.sub if layer.sub is not None else out
        return out.clamp(max=layer.maxv) if layer.maxv is not None else out
    return general_relu


def _general_relu_onnx(layer: GeneralReLU, graph, x: str) -> str:
    out = graph.op("LeakyRelu", x, alpha=layer.leak) if layer.leak else graph.op("Relu", x)
    out = graph.op("Sub", out, layer.sub) if layer.sub is not None else out
    return graph.op("Min", out, layer.maxv) if layer.maxv is not None else out


@register(args=(Arg("leak", float, optional=True), Arg("sub", float, optional=True),
                Arg("maxv", float, optional=True)),
          tensor=_general_relu_reference, torch=_general_relu_torch,
          cases=[Case("GeneralReLU(.1,.4,2)", (6, 7), {"leak": 0.1, "sub": 0.4, "maxv": 2.0}, scale=2),
                 Case("GeneralReLU()", (6, 7))],
          activation=Activation("general", {"leak": 0.1, "sub": 0.4}, gain="leaky_relu"),
          onnx=OnnxExport(_general_relu_onnx))
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


@register(tensor=lambda layer: lambda x: x.tanh(), torch=lambda torch, layer: torch.tanh,
          cases=[Case("Tanh", (6, 7))], activation=Activation("tanh", gain="tanh"),
          torch_module=TorchModule("Tanh"), onnx=OnnxExport(lambda layer, g, x: g.op("Tanh", x)))
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


@register(tensor=lambda layer: lambda x: x.sigmoid(), torch=lambda torch, layer: torch.sigmoid,
          cases=[Case("Sigmoid", (6, 7), scale=3)], activation=Activation("sigmoid", gain="sigmoid"),
          torch_module=TorchModule("Sigmoid"), onnx=OnnxExport(lambda layer, g, x: g.op("Sigmoid", x)))
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


def _gelu_reference(layer: GELU):
    if layer.approximate == "tanh":
        return lambda x: 0.5 * x * (1 + (F.GELU_TANH_SCALE * (x + F.GELU_TANH_CUBIC * x ** 3)).tanh())
    return lambda x: 0.5 * x * (1 + (x * np.sqrt(0.5)).erf())


def _gelu_onnx(layer: GELU, graph, x: str) -> str:
    """0.5 x (1 + erf(x / sqrt 2)) with Erf, or the tanh formula (ONNX's Gelu op is opset 20's)."""
    if layer.approximate == "tanh":
        cubic = graph.op("Mul", graph.op("Mul", graph.op("Mul", x, x), x), F.GELU_TANH_CUBIC)
        twice_phi = graph.op("Tanh", graph.op("Mul", graph.op("Add", x, cubic), F.GELU_TANH_SCALE))
    else:
        twice_phi = graph.op("Erf", graph.op("Mul", x, float(np.sqrt(0.5))))
    return graph.op("Mul", graph.op("Mul", x, graph.op("Add", twice_phi, 1.0)), 0.5)


@register(args=(Arg("approximate", str, choices=("none", "tanh")),), tensor=_gelu_reference,
          torch=lambda torch, layer: lambda x: torch.nn.functional.gelu(x, approximate=layer.approximate),
          cases=[Case("GELU", (6, 7), scale=2), Case("GELU(tanh)", (6, 7), {"approximate": "tanh"}, scale=2)],
          activation=Activation("gelu", gain="relu"), torch_module=TorchModule("GELU"), onnx=OnnxExport(_gelu_onnx))
class GELU(_Elementwise):
    """x * Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel); ``approximate='tanh'`` is
    the tanh formula of GPT-2 and BERT. The backward recomputes from the saved input."""

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(x)
        return F.gelu(x, self.approximate)

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (x,) = self._saved()
        self._check_grad(grad_output, x)
        return grad_output * F.gelu_grad(x, self.approximate) if input_grad else None

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


@register(tensor=lambda layer: lambda x: x * x.sigmoid(), torch=lambda torch, layer: torch.nn.functional.silu,
          cases=[Case("SiLU", (6, 7), scale=3)], activation=Activation("silu", gain="relu"),
          torch_module=TorchModule("SiLU", ignored=("inplace",)),
          onnx=OnnxExport(lambda layer, g, x: g.op("Mul", x, g.op("Sigmoid", x))))
class SiLU(_Elementwise):
    """x * sigmoid(x) (swish); gradient s * (1 + x * (1 - s)), from the saved input."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save(x)
        return F.silu(x)

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (x,) = self._saved()
        self._check_grad(grad_output, x)
        return grad_output * F.silu_grad(x) if input_grad else None


@register(tensor=lambda layer: lambda x: x.log_softmax(axis=-1),
          torch=lambda torch, layer: lambda x: torch.log_softmax(x, -1),
          cases=[Case("LogSoftmax", (6, 5), scale=3)],
          torch_module=TorchModule("LogSoftmax", fixed={"dim": -1}),
          onnx=OnnxExport(lambda layer, g, x: g.op("LogSoftmax", x, axis=-1)))
class LogSoftmax(Module):
    """log_softmax along the last axis; backward g - softmax * sum(g)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = F.log_softmax(x)
        self._save(out)
        return out

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (out,) = self._saved()
        if grad_output.shape != out.shape:
            raise ValueError(f"LogSoftmax.backward expected grad_output of shape {out.shape}, got {grad_output.shape}")
        if not input_grad:
            return None
        return grad_output - np.exp(out) * grad_output.sum(axis=-1, keepdims=True)
