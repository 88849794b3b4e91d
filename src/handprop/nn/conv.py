"""Conv2d: 2-D cross-correlation as one patch matrix and one GEMM per pass (im2col, channels last).

The API is PyTorch's: input (N, C_in, H, W), output (N, C_out, OH, OW), weight
(C_out, C_in, kh, kw), so weights move between the two libraries without a permutation.
Inside, the input is read through its (N, H, W, C) view (see :mod:`handprop.nn.window`): each
output pixel's patch is kh*kw runs of C_in contiguous channels, copied once into the patch
matrix (N*OH*OW, kh*kw*C_in). Forward is ``patches @ kernel``, whose (N*OH*OW, C_out) result
is returned as an (N, C_out, OH, OW) view of (N, OH, OW, C_out) memory; a following Conv2d
or pool reads that view back without a copy. Backward is two GEMMs on the saved patches,
and dL/dx is scattered back as kh*kw strided ``+=`` (:func:`~handprop.nn.window.add_windows`).
"""
from __future__ import annotations

import math

import numpy as np

from .._random import resolve_rng
from . import init as _init
from .module import Module, Parameter
from .registry import Arg, Case, register
from .window import Pair, add_windows, crop_hw, nhwc, output_size, pad_hw, pair, show, windows


def _conv2d_reference(layer: Conv2d):
    """Conv2d in Tensor ops: pad, unfold H then W, and one matmul (autograd differentiates each)."""
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding

    def conv2d(x, weight, bias=None):
        n = x.shape[0]
        cols = x.pad(((0, 0), (0, 0), (ph, ph), (pw, pw))).unfold(2, kh, sh).unfold(3, kw, sw)
        _, c, oh, ow, _, _ = cols.shape  # (N, C, OH, OW, kh, kw)
        rows = cols.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
        out = (rows @ weight.reshape(layer.out_channels, -1).T).reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)
        return out if bias is None else out + bias.reshape(1, -1, 1, 1)
    return conv2d


def _conv2d_torch(torch, layer: Conv2d):
    return lambda x, weight, bias=None: torch.nn.functional.conv2d(x, weight, bias, layer.stride, layer.padding)


@register(args=(Arg("in_channels", int, size=True), Arg("out_channels", int, size=True),
                Arg("kernel_size", "pair", size=True), Arg("stride", "pair", size=True), Arg("padding", "pair"),
                Arg("bias", bool, read=lambda layer: layer.bias is not None)),
          tensor=_conv2d_reference, torch=_conv2d_torch,
          cases=[Case("Conv2d(3 -> 4, 3x3)", (2, 3, 6, 5), {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "rng": 0}),
                 Case("Conv2d(3x3, s2, p1)", (2, 2, 7, 6),
                      {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1, "rng": 1}),
                 Case("Conv2d(2x3, s2x1, p1x0)", (2, 3, 5, 6),
                      {"in_channels": 3, "out_channels": 2, "kernel_size": (2, 3), "stride": (2, 1),
                       "padding": (1, 0), "rng": 2}),
                 Case("Conv2d(5x5, p2, no bias)", (3, 1, 7, 7),
                      {"in_channels": 1, "out_channels": 3, "kernel_size": 5, "padding": 2, "bias": False, "rng": 3}),
                 Case("Conv2d(1x1, s3)", (2, 4, 5, 5),
                      {"in_channels": 4, "out_channels": 3, "kernel_size": 1, "stride": 3, "rng": 4})])
class Conv2d(Module):
    """2-D convolution (cross-correlation, as PyTorch). Input (N, C_in, H, W) -> (N, C_out, OH, OW),
    OH = (H + 2 * padding - kh) // stride + 1 (likewise OW).

    ``kernel_size``, ``stride`` and ``padding`` are an int or a pair (height, width). The
    initialisation is PyTorch's default: weight kaiming_uniform with a=sqrt(5), bias
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in * kh * kw, drawn from ``rng``.

    >>> Conv2d(1, 32, 3, stride=2, padding=1)
    Conv2d(1 -> 32, kernel_size=3, stride=2, padding=1)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Pair, stride: int | Pair = 1,
                 padding: int | Pair = 0, bias: bool = True, dtype: np.dtype | type = np.float32,
                 rng: np.random.Generator | int | None = None):
        for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
                raise ValueError(f"Conv2d: {name} must be a positive integer, got {n!r}")
        if not isinstance(bias, bool):
            raise ValueError(f"Conv2d: bias must be True or False, got {bias!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.padding = pair(padding, "padding", "Conv2d", minimum=0)
        self.weight = Parameter(np.empty((self.out_channels, self.in_channels, *self.kernel_size), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype=dtype)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """(Re)draw weight and bias with PyTorch's default initialisation."""
        rng = resolve_rng(rng)
        _init.kaiming_uniform_(self.weight.data, a=math.sqrt(5), rng=rng)
        if self.bias is not None:
            bound = 1 / math.sqrt(_init.fans(self.weight.data)[0])
            _init.uniform_(self.bias.data, -bound, bound, rng=rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        w = self.weight.data
        xh = nhwc(x, self, self.in_channels)
        if x.dtype != w.dtype:
            raise ValueError(f"{self!r} expected {w.dtype} input, got {x.dtype} "
                             f"(convert with x.astype(np.{w.dtype}) or model.to(np.{x.dtype}))")
        n = x.shape[0]
        oh, ow = output_size(xh.shape[1:3], self.kernel_size, self.stride, self.padding, self)
        patches = np.empty((n, oh, ow, *self.kernel_size, self.in_channels), dtype=w.dtype)
        np.copyto(patches, windows(pad_hw(xh, self.padding), self.kernel_size, self.stride))
        patches = patches.reshape(n * oh * ow, -1)
        kernel = w.transpose(2, 3, 1, 0).reshape(-1, self.out_channels)  # rows in the patches' (kh, kw, C) order
        out = patches @ kernel
        if self.bias is not None:
            out += self.bias.data
        self._save(patches, kernel, x.shape)
        return out.reshape(n, oh, ow, self.out_channels).transpose(0, 3, 1, 2)

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        patches, kernel, (n, _, h, w) = self._saved()
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        oh, ow = output_size((h, w), self.kernel_size, self.stride, self.padding, self)
        if grad_output.shape != (n, self.out_channels, oh, ow):
            raise ValueError(f"{self!r}.backward expected grad_output of shape "
                             f"{(n, self.out_channels, oh, ow)}, got {grad_output.shape}")
        g = grad_output.transpose(0, 2, 3, 1).reshape(-1, self.out_channels)  # no copy if it is our layout
        # dL/dW = g^T patches, whose columns come in (kh, kw, C) order: permute the small result.
        grad_w = (g.T @ patches).reshape(self.out_channels, kh, kw, self.in_channels)
        self.weight.grad += grad_w.transpose(0, 3, 1, 2)
        if self.bias is not None:
            self.bias.grad += np.add.reduce(g, axis=0)
        if not input_grad:
            return None
        grad_patches = (g @ kernel.T).reshape(n, oh, ow, kh, kw, self.in_channels)
        grad_x = np.zeros((n, h + 2 * ph, w + 2 * pw, self.in_channels), dtype=grad_patches.dtype)
        add_windows(grad_patches, grad_x, self.stride)
        return crop_hw(grad_x, self.padding).transpose(0, 3, 1, 2)

    def extra_repr(self) -> str:
        text = f"{self.in_channels} -> {self.out_channels}, kernel_size={show(self.kernel_size)}"
        if self.stride != (1, 1):
            text += f", stride={show(self.stride)}"
        if self.padding != (0, 0):
            text += f", padding={show(self.padding)}"
        return text + ("" if self.bias is not None else ", bias=False")
