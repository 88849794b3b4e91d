"""Pooling over (N, C, H, W): MaxPool2d, AvgPool2d and global average pooling (AdaptiveAvgPool2d(1)).

Like Conv2d they compute on the (N, H, W, C) view of the input and return (N, C, OH, OW)
views of (N, OH, OW, C) memory (see :mod:`handprop.nn.window`): a Conv2d's output is read
without a copy, a channels-first input is copied once. Their backward passes have no
parameters to fill.
"""
from __future__ import annotations

import numpy as np

from .module import Module
from .registry import Arg, Case, OnnxExport, TorchModule, register
from .window import Pair, add_windows, nhwc, output_size, pair, show, windows


def _unfold(x, layer: _Pool2d):
    """Tensor reference: every window, as (N, C, OH, OW, kh, kw)."""
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    return x.unfold(2, kh, sh).unfold(3, kw, sw)


class _Pool2d(Module):
    """Shared by MaxPool2d and AvgPool2d: a kernel and a stride (default: the kernel), no padding.

    They work channels last: an input with its channels not innermost in memory (e.g. a
    channels-first array) is copied so that they are. Otherwise every elementwise step over a
    window position would run NumPy loops as short as the output width (3 for 7x7 -> 3x3).
    """

    def __init__(self, kernel_size: int | Pair, stride: int | Pair | None = None):
        name = type(self).__name__
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", name)

    def _windows(self, x: np.ndarray) -> np.ndarray:
        """The (N, OH, OW, kh, kw, C) view of every window of ``x``; ValueError if ``x`` cannot be pooled."""
        xh = nhwc(x, self)
        output_size(xh.shape[1:3], self.kernel_size, self.stride, (0, 0), self)
        if xh.strides[3] != xh.itemsize:
            xh = np.ascontiguousarray(xh)
        return windows(xh, self.kernel_size, self.stride)

    def _grad(self, grad_output: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
        """The (N, OH, OW, C) view of ``grad_output``; ValueError unless it is (N, C, OH, OW)."""
        n, c, h, w = in_shape
        oh, ow = output_size((h, w), self.kernel_size, self.stride, (0, 0), self)
        if grad_output.shape != (n, c, oh, ow):
            raise ValueError(f"{self!r}.backward expected grad_output of shape {(n, c, oh, ow)}, "
                             f"got {grad_output.shape}")
        return grad_output.transpose(0, 2, 3, 1)

    def _scatter(self, window_grad, in_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """dL/dx (N, C, H, W), channels last in memory, from each window element's gradient."""
        n, c, h, w = in_shape
        grad_x = np.zeros((n, h, w, c), dtype)
        return add_windows(grad_x, window_grad, self.kernel_size, self.stride).transpose(0, 3, 1, 2)

    def extra_repr(self) -> str:
        text = f"kernel_size={show(self.kernel_size)}"
        return text if self.stride == self.kernel_size else f"{text}, stride={show(self.stride)}"


_POOL_ARGS = (Arg("kernel_size", "pair", positive=True), Arg("stride", "pair", positive=True))


def _pool_onnx(op_type: str) -> OnnxExport:
    """MaxPool or AveragePool over each window, unpadded as handprop's pools."""
    return OnnxExport(lambda layer, graph, x: graph.op(op_type, x, kernel_shape=list(layer.kernel_size),
                                                       strides=list(layer.stride)))


def _pool_cases(name: str) -> list[Case]:
    return [Case(f"{name}(2)", (2, 3, 6, 5), {"kernel_size": 2}),
            Case(f"{name}(3, s2)", (2, 2, 7, 7), {"kernel_size": 3, "stride": 2}),
            Case(f"{name}(2x3, s1x2)", (2, 2, 5, 8), {"kernel_size": (2, 3), "stride": (1, 2)})]


@register(args=_POOL_ARGS, tensor=lambda layer: lambda x: _unfold(x, layer).max(axis=(4, 5)),
          torch=lambda torch, layer: lambda x: torch.nn.functional.max_pool2d(x, layer.kernel_size, layer.stride),
          cases=_pool_cases("MaxPool2d"), onnx=_pool_onnx("MaxPool"),
          torch_module=TorchModule("MaxPool2d", ("kernel_size",)))
class MaxPool2d(_Pool2d):
    """The maximum of each window; backward routes each gradient to its window's argmax (the
    first maximum in row-major order on ties, as PyTorch; a NaN counts as the maximum)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        win = self._windows(x)
        kh, kw = self.kernel_size
        out = win[:, :, :, 0, 0].copy()
        arg = np.zeros(out.shape, dtype=np.min_scalar_type(kh * kw - 1)) if self.training else None
        # Arithmetic, not masked writes (np.copyto(where=), arg[mask] = k): those branch per
        # element on a random mask and ran 30x slower.
        for k in range(1, kh * kw):
            candidate = win[:, :, :, k // kw, k % kw]
            if arg is not None:
                wins = np.greater(candidate, out)  # strictly: on a tie the first maximum stays
                wins |= np.isnan(candidate)
                arg += wins * (arg.dtype.type(k) - arg)  # k where the candidate wins
            np.maximum(out, candidate, out=out)  # (a NaN on either side wins, as in PyTorch)
        self._save(arg, x.shape)
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        arg, in_shape = self._saved()
        g = self._grad(grad_output, in_shape)
        if not input_grad:
            return None
        kw = self.kernel_size[1]
        return self._scatter(lambda i, j: np.multiply(g, arg == i * kw + j, dtype=g.dtype), in_shape, g.dtype)


@register(args=_POOL_ARGS, tensor=lambda layer: lambda x: _unfold(x, layer).mean(axis=(4, 5)),
          torch=lambda torch, layer: lambda x: torch.nn.functional.avg_pool2d(x, layer.kernel_size, layer.stride),
          cases=_pool_cases("AvgPool2d"), onnx=_pool_onnx("AveragePool"),
          torch_module=TorchModule("AvgPool2d", ("kernel_size",)))
class AvgPool2d(_Pool2d):
    """The mean of each window; backward spreads each gradient evenly over its window."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = self._windows(x).mean(axis=(3, 4))
        self._save(x.shape)
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (in_shape,) = self._saved()
        g = self._grad(grad_output, in_shape)
        if not input_grad:
            return None
        kh, kw = self.kernel_size
        share = g / (kh * kw)
        return self._scatter(lambda i, j: share, in_shape, g.dtype)


@register(args=(Arg("output_size", int, choices=(1,)),),
          tensor=lambda layer: lambda x: x.mean(axis=(2, 3), keepdims=True),
          torch=lambda torch, layer: lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 1),
          cases=[Case("AdaptiveAvgPool2d(1)", (2, 3, 5, 4), {"output_size": 1})],
          onnx=OnnxExport(lambda layer, graph, x: graph.op("GlobalAveragePool", x)),
          torch_module=TorchModule("AdaptiveAvgPool2d", ("output_size",)))
class AdaptiveAvgPool2d(Module):
    """Global average pooling: (N, C, H, W) -> (N, C, 1, 1), the mean of each channel.

    Only ``output_size=1`` is supported (other sizes are refused).
    """

    def __init__(self, output_size: int | Pair = 1):
        if pair(output_size, "output_size", "AdaptiveAvgPool2d") != (1, 1):
            raise ValueError(f"AdaptiveAvgPool2d: only output_size=1 (global average pooling) is supported, "
                             f"got {output_size!r}")
        self.output_size = 1

    def forward(self, x: np.ndarray) -> np.ndarray:
        nhwc(x, self)
        self._save(x.shape)
        return x.mean(axis=(2, 3), keepdims=True)

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        ((n, c, h, w),) = self._saved()
        if grad_output.shape != (n, c, 1, 1):
            raise ValueError(f"{self!r}.backward expected grad_output of shape {(n, c, 1, 1)}, "
                             f"got {grad_output.shape}")
        if not input_grad:
            return None
        grad_x = np.empty((n, h, w, c), dtype=grad_output.dtype)  # the layout Conv2d works in
        grad_x[...] = grad_output.reshape(n, 1, 1, c) / (h * w)
        return grad_x.transpose(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return "1"
