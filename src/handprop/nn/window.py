"""Sliding-window geometry shared by Conv2d and the pooling layers.

Kernel, stride and padding arguments are an int or a pair ``(height, width)``, as in PyTorch.
The layers take and return (N, C, H, W) arrays but compute on the (N, H, W, C) *view* of them
(a transpose, no copy): there a window is ``kh * kw`` runs of C contiguous channels, and the
result of a GEMM over patches is already (N, H, W, C) memory, returned as an (N, C, H, W) view.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

Pair = tuple[int, int]


def pair(value: int | tuple[int, int], name: str, owner: str, minimum: int = 1) -> Pair:
    """``value`` as ``(height, width)``; a ValueError naming ``owner`` unless both are ints >= ``minimum``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum
                                  for v in items):
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{owner}: {name} must be {kind} or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def show(p: Pair) -> str:
    """``3`` for (3, 3), ``(3, 2)`` otherwise: how a repr prints a pair."""
    return str(p[0]) if p[0] == p[1] else str(p)


def nhwc(x: np.ndarray, layer: object, channels: int | None = None) -> np.ndarray:
    """The (N, H, W, C) view of an (N, C, H, W) input; a ValueError naming ``layer`` for any other shape."""
    if not isinstance(x, np.ndarray) or x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        c = "C" if channels is None else channels
        raise ValueError(f"{layer!r} expected input (N, {c}, H, W), got {np.shape(x)}")
    return x.transpose(0, 2, 3, 1)


def output_size(size: Pair, kernel: Pair, stride: Pair, padding: Pair, layer: object) -> Pair:
    """(OH, OW) of windows sliding over ``size`` padded by ``padding``; ValueError if the kernel does not fit."""
    padded = (size[0] + 2 * padding[0], size[1] + 2 * padding[1])
    if padded[0] < kernel[0] or padded[1] < kernel[1]:
        pad = f" (padded {padded[0]}x{padded[1]})" if padding != (0, 0) else ""
        raise ValueError(f"{layer!r}: input {size[0]}x{size[1]}{pad} is smaller than the "
                         f"{kernel[0]}x{kernel[1]} kernel")
    return (padded[0] - kernel[0]) // stride[0] + 1, (padded[1] - kernel[1]) // stride[1] + 1


def windows(x: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray:
    """(N, H, W, C) -> the read-only view (N, OH, OW, kh, kw, C) of every window (no copy)."""
    view = sliding_window_view(x, kernel, axis=(1, 2))[:, ::stride[0], ::stride[1]]
    return view.transpose(0, 1, 2, 4, 5, 3)


def add_windows(out: np.ndarray, window_grad: Callable[[int, int], np.ndarray], kernel: Pair,
                stride: Pair) -> np.ndarray:
    """The adjoint of :func:`windows`: for every kernel offset (i, j), add ``window_grad(i, j)``
    (N, OH, OW, C), the gradient of element (i, j) of every window, into ``out`` (N, H, W, C)
    where that element was read; return ``out``.

    One strided ``+=`` per kernel offset (kh * kw of them), each over the whole batch;
    overlapping windows accumulate. ``np.add.at`` would do it in one call but 4-12x slower.
    """
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (out.shape[1] - kh) // sh + 1, (out.shape[2] - kw) // sw + 1
    for i in range(kh):
        for j in range(kw):
            out[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += window_grad(i, j)
    return out


def add_patches(out: np.ndarray, patches: np.ndarray, stride: Pair) -> np.ndarray:
    """The adjoint of :func:`windows` for a whole patch array (N, OH, OW, kh, kw, C): add every
    window back into ``out`` (N, H, W, C) where it was read; return ``out``.

    Kernel offsets are taken in blocks of up to stride x stride: offsets (i, j) sharing
    ``i // sh`` and ``j // sw`` land on disjoint pixels, so each block is one strided ``+=`` whose
    contiguous runs are ``sw * C`` values long (the window's neighbouring columns are
    neighbours in ``out`` too) where :func:`add_windows` adds one offset at a time in runs of
    ``C``: for 3x3 stride 2, 4 adds instead of 9 (3.6 ms -> 1.5 ms on the cnn's 16-channel layer).
    """
    n, oh, ow, kh, kw, c = patches.shape
    sh, sw = stride
    s0, s1, s2, s3 = out.strides
    for bi in range(0, kh, sh):
        li = min(sh, kh - bi)
        for bj in range(0, kw, sw):
            lj = min(sw, kw - bj)
            # out[:, bi + sh * a + di, bj + sw * b + dj] for a < OH, di < li, b < OW, dj < lj: in bounds
            # (the last is the window's last pixel), and disjoint within the block (li <= sh, lj <= sw)
            block = as_strided(out[:, bi:, bj:], (n, oh, li, ow, lj, c), (s0, sh * s1, s1, sw * s2, s2, s3))
            block += patches[:, :, :, bi:bi + li, bj:bj + lj].transpose(0, 1, 3, 2, 4, 5)
    return out
