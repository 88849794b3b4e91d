"""Conv2d: 2-D cross-correlation as matrix products over channels-last pixels.

The API is PyTorch's: input (N, C_in, H, W), output (N, C_out, OH, OW), weight
(C_out, C_in, kh, kw), so weights move between the two libraries without a permutation.
Inside, the input is read through its (N, H, W, C) view (see :mod:`handprop.nn.window`), where
a pixel's channels are one contiguous row, and the (N*OH*OW, C_out) product is returned as an
(N, C_out, OH, OW) view of (N, OH, OW, C_out) memory, which a following Conv2d or pool reads
back without a copy. The products themselves are in :mod:`handprop.nn.conv_gemm`: shifted
GEMMs for stride 1 and enough channels, im2col otherwise.
"""
from __future__ import annotations

import math

import numpy as np

from .._random import resolve_rng
from . import init as _init
from .module import Module, Parameter
from .conv_gemm import Scratch, im2col_backward, im2col_forward, shifted_backward, shifted_forward, use_shifted
from .registry import Arg, Case, OnnxExport, TorchModule, register
from .window import Pair, nhwc, output_size, pair, show

#: Eval-mode Conv2d runs a batch in chunks of images whose internal arrays take at most this much.
EVAL_CHUNK_BYTES = 16 << 20


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


def _conv2d_onnx(layer: Conv2d, graph, x: str) -> str:
    """Conv, the weight in its own layout (C_out, C_in, kh, kw); ONNX pads (top, left, bottom, right)."""
    bias = () if layer.bias is None else (layer.bias.data,)
    ph, pw = layer.padding
    return graph.op("Conv", x, layer.weight.data, *bias, kernel_shape=list(layer.kernel_size),
                    strides=list(layer.stride), pads=[ph, pw, ph, pw])


@register(args=(Arg("in_channels", int, size=True), Arg("out_channels", int, size=True),
                Arg("kernel_size", "pair", size=True), Arg("stride", "pair", positive=True), Arg("padding", "pair"),
                Arg("bias", bool, read=lambda layer: layer.bias is not None)),
          tensor=_conv2d_reference, torch=_conv2d_torch,
          torch_module=TorchModule("Conv2d", ("in_channels", "out_channels", "kernel_size")),
          onnx=OnnxExport(_conv2d_onnx, input_shape=lambda layer: (layer.in_channels, "height", "width")),
          cases=[Case("Conv2d(3 -> 4, 3x3)", (2, 3, 6, 5), {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "rng": 0}),
                 Case("Conv2d(3x3, s2, p1)", (2, 2, 7, 6),
                      {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1, "rng": 1}),
                 Case("Conv2d(2x3, s2x1, p1x0)", (2, 3, 5, 6),
                      {"in_channels": 3, "out_channels": 2, "kernel_size": (2, 3), "stride": (2, 1),
                       "padding": (1, 0), "rng": 2}),
                 Case("Conv2d(5x5, p2, no bias)", (3, 1, 7, 7),
                      {"in_channels": 1, "out_channels": 3, "kernel_size": 5, "padding": 2, "bias": False, "rng": 3}),
                 Case("Conv2d(1x1, s3)", (2, 4, 5, 5),
                      {"in_channels": 4, "out_channels": 3, "kernel_size": 1, "stride": 3, "rng": 4}),
                 # stride 1 and 8+ channels on a grid with small margins: the shifted-GEMM path
                 Case("Conv2d(8 -> 2, 3x3, p1)", (1, 8, 14, 13),
                      {"in_channels": 8, "out_channels": 2, "kernel_size": 3, "padding": 1, "rng": 5}),
                 Case("Conv2d(8->3, 1x3, p0x1)", (2, 8, 4, 6),
                      {"in_channels": 8, "out_channels": 3, "kernel_size": (1, 3), "padding": (0, 1), "rng": 6}),
                 Case("Conv2d(9 -> 2, 1x1)", (2, 9, 3, 4), {"in_channels": 9, "out_channels": 2, "kernel_size": 1,
                                                           "bias": False, "rng": 7})])
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
        self._scratch = Scratch()
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
        size = xh.shape[1:3]
        out_size = output_size(size, self.kernel_size, self.stride, self.padding, self)
        bias = self.bias.data if self.bias is not None else None
        shifted = use_shifted(self.in_channels, size, self.kernel_size, self.stride, self.padding)

        def products(xs: np.ndarray, scratch: Scratch, out: np.ndarray | None = None):
            if shifted:
                return shifted_forward(xs, w, bias, self.padding, scratch)
            return im2col_forward(xs, w, bias, self.stride, self.padding, out_size, scratch, out)
        if self.training:  # training steps reuse the layer's internal arrays
            out, saved = products(xh, self._scratch)
            self._save(shifted, saved, x.shape)
            return out.transpose(0, 3, 1, 2)
        # Eval-mode inference (maybe one huge batch) keeps nothing once it returns, and runs in
        # chunks of images whose internal arrays (padded input, patches or grid) fit in
        # EVAL_CHUNK_BYTES, reused from chunk to chunk: a 10,000-image batch would otherwise hold
        # a 1.1 GB patch matrix at once (the cnn's second conv), and a chunk's stay in cache.
        n = len(xh)
        per_image = w.itemsize * (self.in_channels * math.prod(self.kernel_size) * math.prod(out_size)
                                  if not shifted else (self.in_channels + self.out_channels)
                                  * (size[0] + 2 * self.padding[0]) * (size[1] + 2 * self.padding[1]))
        step = max(1, EVAL_CHUNK_BYTES // per_image)
        out = np.empty((n, *out_size, self.out_channels), w.dtype)
        scratch = Scratch()
        for i in range(0, n, step):
            chunk = out[i:i + step]
            result, _ = products(xh[i:i + step], scratch, chunk)
            if shifted:  # computed on the padded grid: the valid pixels copied out
                chunk[...] = result
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        shifted, saved, (n, _, h, w) = self._saved()
        oh, ow = output_size((h, w), self.kernel_size, self.stride, self.padding, self)
        if grad_output.shape != (n, self.out_channels, oh, ow):
            raise ValueError(f"{self!r}.backward expected grad_output of shape "
                             f"{(n, self.out_channels, oh, ow)}, got {grad_output.shape}")
        g = grad_output.transpose(0, 2, 3, 1)
        bias = self.bias is not None
        if shifted:
            grad_w, grad_b, grad_x = shifted_backward(saved, g, self.weight.data, self.padding, bias, input_grad,
                                                      self._scratch)
        else:
            grad_w, grad_b, grad_x = im2col_backward(saved, g, self.weight.data, self.stride, self.padding, (h, w),
                                                     bias, input_grad, self._scratch)
        self.weight.accumulate_grad(grad_w)
        if bias:
            self.bias.accumulate_grad(grad_b)
        return None if grad_x is None else grad_x.transpose(0, 3, 1, 2)

    def extra_repr(self) -> str:
        text = f"{self.in_channels} -> {self.out_channels}, kernel_size={show(self.kernel_size)}"
        if self.stride != (1, 1):
            text += f", stride={show(self.stride)}"
        if self.padding != (0, 0):
            text += f", padding={show(self.padding)}"
        return text + ("" if self.bias is not None else ", bias=False")
