"""ResBlock: the residual block fast.ai builds for small images, a module that is not a chain.

``ResBlock(ni, nf, stride)`` computes ``act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x))``:
two 3x3 convolutions (the first with the stride, as in the ResNet paper), each followed by
BatchNorm2d, and a shortcut that is the identity when the block keeps the shape (``ni == nf``,
stride 1), else a 2x2 average pool (stride 2; ``ceil_mode`` as fast.ai, so a 7x7 map pools to
4x4 like the strided convolution) and a 1x1 convolution (``ni != nf``). Backward runs both
branches back from the sum and adds their input gradients.
"""
from __future__ import annotations

import numpy as np

from . import registry as _registry
from .batchnorm import BatchNorm2d
from .conv import Conv2d
from .._random import resolve_rng
from .module import Module
from .normalization import random_affine
from .registry import Arg, Case, OnnxExport, register, tensor_forward, torch_forward


def _pool_index(size: int) -> np.ndarray:
    """Rows (or columns) of a 2x2, stride-2, ceil-mode pool: an odd last row is read twice,
    which averages it with itself, i.e. over the rows inside the image, as PyTorch's ceil mode."""
    return np.minimum(np.arange(2 * (-(-size // 2))), size - 1)


def pool_forward(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling, stride 2, ceil mode: (N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2)),
    computed channels last (a view of (N, OH, OW, C) memory is returned, as Conv2d does)."""
    n, c, h, w = x.shape
    xh = x.transpose(0, 2, 3, 1)[:, _pool_index(h)][:, :, _pool_index(w)]
    oh, ow = xh.shape[1] // 2, xh.shape[2] // 2
    return xh.reshape(n, oh, 2, ow, 2, c).mean(axis=(2, 4)).transpose(0, 3, 1, 2)


def pool_backward(grad_output: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
    """dL/dx of :func:`pool_forward`: a quarter of each gradient to each window element, the
    gradient of a row read twice summed onto it."""
    n, c, h, w = in_shape
    oh, ow = grad_output.shape[2:]
    quarter = grad_output.transpose(0, 2, 3, 1)[:, :, None, :, None, :] / 4
    full = np.broadcast_to(quarter, (n, oh, 2, ow, 2, c)).reshape(n, 2 * oh, 2 * ow, c)
    grad = full[:, :h, :w].copy()
    if 2 * oh > h:
        grad[:, h - 1] += full[:, h, :w]
    if 2 * ow > w:
        grad[:, :, w - 1] += full[:, :h, w]
        if 2 * oh > h:
            grad[:, h - 1, w - 1] += full[:, h, w]
    return grad.transpose(0, 3, 1, 2)


def _activation_names() -> tuple[str, ...]:
    return tuple(_registry.activations())


def _branches(block: ResBlock, forward) -> tuple:
    """(residual, shortcut): ``f(x, *params)`` of each branch from the children's registered
    forwards (``forward`` = tensor_forward or torch_forward), params in ``block.parameters()`` order."""
    def chained(layers):
        return _registry.chain([forward(m) for m in layers], [len(m.parameters()) for m in layers])
    residual = [block.conv1, block.bn1, block.act1, block.conv2, block.bn2]
    return chained(residual), sum(len(m.parameters()) for m in residual), \
        (chained([block.idconv]) if block.idconv is not None else lambda x: x)


def _reference(block: ResBlock, forward, pool, add_act):
    residual, n_residual, shortcut = _branches(block, forward)

    def resblock(x, *params):
        s = pool(x) if block.stride == 2 else x
        return add_act(residual(x, *params[:n_residual]), shortcut(s, *params[n_residual:]))
    return resblock


def _tensor_pool(x):
    h, w = x.shape[2:]
    return x[:, :, _pool_index(h)][:, :, :, _pool_index(w)].unfold(2, 2, 2).unfold(3, 2, 2).mean(axis=(4, 5))


def _tensor_twin(block: ResBlock):
    act = tensor_forward(block.act2)
    return _reference(block, tensor_forward, _tensor_pool, lambda r, s: act(r + s))


def _torch_twin(torch, block: ResBlock):
    act = torch_forward(block.act2)
    return _reference(block, torch_forward, lambda x: torch.nn.functional.avg_pool2d(x, 2, ceil_mode=True),
                      lambda r, s: act(r + s))


def _onnx_twin(block: ResBlock, graph, x: str) -> str:
    residual = x
    for name in ("conv1", "bn1", "act1", "conv2", "bn2"):
        residual = graph.layer(getattr(block, name), residual, name)
    s = graph.op("AveragePool", x, kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1) if block.stride == 2 else x
    if block.idconv is not None:
        s = graph.layer(block.idconv, s, "idconv")
    return graph.layer(block.act2, graph.op("Add", residual, s), "act2")


def _case(ni: int, nf: int, stride: int, act: str, seed: int):
    def make() -> ResBlock:
        block = ResBlock(ni, nf, stride, act, dtype=np.float64, rng=seed)
        for i, bn in enumerate((block.bn1, block.bn2)):
            random_affine(lambda bn=bn: bn, seed + i)()
        return block
    return make


@register(args=(Arg("ni", int, size=True), Arg("nf", int, size=True), Arg("stride", int, choices=(1, 2)),
                Arg("act", str, choices=_activation_names())),
          tensor=_tensor_twin, torch=_torch_twin,
          onnx=OnnxExport(_onnx_twin, input_shape=lambda block: (block.ni, "height", "width")),
          cases=[Case("ResBlock(3 -> 3), identity", (3, 3, 5, 4), make=_case(3, 3, 1, "relu", 1)),
                 Case("ResBlock(2 -> 4, s2), 7x6", (3, 2, 7, 6), make=_case(2, 4, 2, "gelu", 2)),
                 Case("ResBlock(3 -> 2, s1)", (2, 3, 4, 4), make=_case(3, 2, 1, "silu", 3))])
class ResBlock(Module):
    """conv3x3(stride)-BN-act, conv3x3-BN, plus the identity or (avg-pool and) 1x1 conv shortcut, act.

    ``stride`` is 1 or 2; ``act`` an activation name of ``handprop train --activation``. The
    convolutions before a BatchNorm have no bias (it would be cancelled); the 1x1 shortcut has one.

    >>> ResBlock(16, 32, stride=2).conv1
    Conv2d(16 -> 32, kernel_size=3, stride=2, padding=1, bias=False)
    """

    def __init__(self, ni: int, nf: int, stride: int = 1, act: str = "relu", dtype: np.dtype | type = np.float32,
                 rng: np.random.Generator | int | None = None):
        for name, value, ok in (("ni", ni, None), ("nf", nf, None), ("stride", stride, (1, 2))):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0 \
                    or (ok and value not in ok):
                raise ValueError(f"ResBlock: {name} must be {'1 or 2' if ok else 'a positive integer'}, got {value!r}")
        if act not in _registry.activations():
            raise ValueError(f"ResBlock: act must be one of {', '.join(_registry.activations())}, got {act!r}")
        rng = resolve_rng(rng)
        self.ni, self.nf, self.stride, self.act = int(ni), int(nf), int(stride), act
        self.conv1 = Conv2d(ni, nf, 3, stride, padding=1, bias=False, dtype=dtype, rng=rng)
        self.bn1 = BatchNorm2d(nf, dtype=dtype)
        self.act1 = _registry.activation(act)
        self.conv2 = Conv2d(nf, nf, 3, padding=1, bias=False, dtype=dtype, rng=rng)
        self.bn2 = BatchNorm2d(nf, dtype=dtype)
        self.idconv = Conv2d(ni, nf, 1, dtype=dtype, rng=rng) if ni != nf else None
        self.act2 = _registry.activation(act)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != self.ni:
            raise ValueError(f"ResBlock({self.extra_repr()}) expected input (N, {self.ni}, H, W), got {x.shape}")
        residual = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        shortcut = pool_forward(x) if self.stride == 2 else x
        if self.idconv is not None:
            shortcut = self.idconv(shortcut)
        self._save(x.shape)
        return self.act2(residual + shortcut)

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        (in_shape,) = self._saved()
        g = self.act2.backward(grad_output)  # the sum passes it to both branches unchanged
        grad_x = g
        for layer in (self.bn2, self.conv2, self.act1, self.bn1):
            grad_x = layer.backward(grad_x)
        grad_x = self.conv1.backward(grad_x, input_grad)
        grad_s = g if self.idconv is None else self.idconv.backward(g, input_grad)
        if not input_grad:
            return None
        if self.stride == 2:
            grad_s = pool_backward(grad_s, in_shape)
        return grad_x + grad_s

    def extra_repr(self) -> str:
        return f"{self.ni} -> {self.nf}" + (f", stride={self.stride}" if self.stride != 1 else "") + \
            (f", act={self.act!r}" if self.act != "relu" else "")
