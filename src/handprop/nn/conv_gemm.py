"""The two ways Conv2d turns a convolution into matrix products, on (N, H, W, C) arrays.

**Shifted GEMMs** (stride 1). Lay the zero-padded input out as a matrix X of
L = N * Hp * Wp rows (one per pixel of the padded grid) and C_in columns. Compute the output
at every grid pixel, not only the OH x OW valid ones: then kernel offset (i, j) reads the
pixel ``i * Wp + j`` rows further on, for every output pixel alike, so its contribution is one
GEMM of a *shifted row range* of X: ``Y[:L - s] += X[s:] @ W[i, j]``. kh*kw GEMMs accumulate
(BLAS beta = 1) without copying the input into patches; the garbage outputs at the grid's
right and bottom margins are never read. Backward runs the same shifts:
``dW[i, j] = G[:L - s]^T @ X[s:]`` and ``dX[s:] += G[:L - s] @ W[i, j]^T``, with G the output
gradient laid on the grid (zeros on the margins). Extra work: Hp*Wp / (OH*OW) (1.15x for
3x3, padding 1, on 28x28), against a patch matrix kh*kw times the input and its scatter.

**im2col** (any stride). Copy every window into a patch matrix P (N*OH*OW, kh*kw*C_in),
then ``Y = P @ W``, ``dW = G^T P``, ``dP = G W^T``, and scatter dP back as kh*kw strided adds.
Used for strided convolutions and few input channels (where shifted GEMMs would be
C_in-thin and the patch matrix is small).

Both keep their internal arrays (padded input, patches, gradient grids) in a :class:`Scratch`
that lives with the layer: a fresh multi-megabyte array costs a page fault per 4 KiB on first
touch, which on the 28x28 benchmark layer was a fifth of the step. Arrays returned to the
caller are always fresh.
"""
from __future__ import annotations

import numpy as np

from .blas import matmul_add
from .functional import sum_rows
from .window import Pair, add_patches, windows

#: Shifted GEMMs need this many input channels (a GEMM with K = C_in thinner than this wastes
#: more on the kh*kw passes over the output than the patch copy costs) ...
SHIFT_MIN_CHANNELS = 8
#: ... and at most this much extra work on the grid margins (small images with wide padding).
SHIFT_MAX_OVERHEAD = 1.35


def use_shifted(in_channels: int, size: Pair, kernel: Pair, stride: Pair, padding: Pair) -> bool:
    """True where shifted GEMMs beat im2col (see the module docstring)."""
    grid = (size[0] + 2 * padding[0]) * (size[1] + 2 * padding[1])
    valid = (size[0] + 2 * padding[0] - kernel[0] + 1) * (size[1] + 2 * padding[1] - kernel[1] + 1)
    return stride == (1, 1) and in_channels >= SHIFT_MIN_CHANNELS and grid <= SHIFT_MAX_OVERHEAD * valid


class Scratch:
    """Named arrays a layer reuses from call to call while their shape and dtype stay the same.

    A new array starts zeroed; after that it keeps whatever was written into it, so a caller
    either overwrites what it reads or relies on parts it never writes (a padding margin)
    staying zero.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._arrays[name] = np.zeros(shape, dtype)
        return a

    def padded(self, name: str, x: np.ndarray, padding: Pair) -> np.ndarray:
        """``x`` (N, H, W, C) copied into the middle of a zero-margined (N, H + 2ph, W + 2pw, C) array."""
        (ph, pw), (n, h, w, c) = padding, x.shape
        out = self.get(name, (n, h + 2 * ph, w + 2 * pw, c), x.dtype)
        out[:, ph:ph + h, pw:pw + w] = x
        return out


#: What a backward returns: dL/dweight (C_out, C_in, kh, kw), dL/dbias (None without a bias) and
#: dL/dx as an (N, H, W, C_in) view (None when ``input_grad`` is False).
Grads = tuple[np.ndarray, "np.ndarray | None", "np.ndarray | None"]


def _shifts(kernel: Pair, width: int) -> list[tuple[int, int, int]]:
    """(i, j, row shift) of every kernel offset on a grid ``width`` pixels wide."""
    return [(i, j, i * width + j) for i in range(kernel[0]) for j in range(kernel[1])]


def _shifted_products(a: np.ndarray, blocks: np.ndarray, out: np.ndarray, shifts, forward: bool) -> None:
    """``out = sum over offsets of a (shifted) @ blocks[i, j]``: rows of ``a`` read ``s`` further on
    (``forward``, the convolution) or written ``s`` further on (its transpose, dL/dx)."""
    np.matmul(a, blocks[0, 0], out=out)  # offset (0, 0) has shift 0: it sets every row
    n = len(a)
    for i, j, s in shifts[1:]:
        if forward:
            matmul_add(a[s:], blocks[i, j], out=out[:n - s])
        else:
            matmul_add(a[:n - s], blocks[i, j], out=out[s:])


# -- shifted GEMMs (stride 1) ----------------------------------------------------------------------

def shifted_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, padding: Pair,
                    scratch: Scratch) -> tuple[np.ndarray, np.ndarray]:
    """(output (N, OH, OW, C_out) view, saved) for x (N, H, W, C_in) and weight (C_out, C_in, kh, kw)."""
    c_out, c_in, kh, kw = weight.shape
    grid = scratch.padded("input", x, padding)
    n, hp, wp, _ = grid.shape
    out = np.empty((n, hp, wp, c_out), dtype=x.dtype)
    flat = out.reshape(-1, c_out)
    blocks = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))  # (kh, kw, C_in, C_out)
    _shifted_products(grid.reshape(-1, c_in), blocks, flat, _shifts((kh, kw), wp), forward=True)
    if bias is not None:
        flat += bias
    return out[:, :hp - kh + 1, :wp - kw + 1], grid


def shifted_backward(grid: np.ndarray, g: np.ndarray, weight: np.ndarray, padding: Pair, bias: bool,
                     input_grad: bool, scratch: Scratch) -> Grads:
    """dL/d(weight, bias, x) from the saved grid and g (N, OH, OW, C_out) (see :data:`Grads`)."""
    c_out, c_in, kh, kw = weight.shape
    n, hp, wp, _ = grid.shape
    rows = grid.reshape(-1, c_in)
    g_grid = scratch.get("grad", (n, hp, wp, c_out), g.dtype)
    g_grid[:, :g.shape[1], :g.shape[2]] = g  # the margins were zeroed once and are never written
    g_rows = g_grid.reshape(-1, c_out)
    shifts = _shifts((kh, kw), wp)
    grad_w = np.empty((kh, kw, c_out, c_in), dtype=g.dtype)
    for i, j, s in shifts:
        np.matmul(g_rows[:len(g_rows) - s].T, rows[s:], out=grad_w[i, j])
    grad_b = sum_rows(g_rows) if bias else None
    if not input_grad:
        return grad_w.transpose(2, 3, 0, 1), grad_b, None
    grad_x = np.empty((n, hp, wp, c_in), dtype=g.dtype)
    blocks = np.ascontiguousarray(weight.transpose(2, 3, 0, 1))  # (kh, kw, C_out, C_in)
    _shifted_products(g_rows, blocks, grad_x.reshape(-1, c_in), shifts, forward=False)
    ph, pw = padding
    return grad_w.transpose(2, 3, 0, 1), grad_b, grad_x[:, ph:hp - ph, pw:wp - pw]


# -- im2col (any stride) ---------------------------------------------------------------------------

def im2col_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Pair, padding: Pair,
                   out_size: Pair, scratch: Scratch, out: np.ndarray | None = None
                   ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(output (N, OH, OW, C_out), saved) for x (N, H, W, C_in) and weight (C_out, C_in, kh, kw);
    the output written into ``out`` (C-contiguous, of that shape) when given."""
    c_out, c_in, kh, kw = weight.shape
    n = x.shape[0]
    patches = scratch.get("patches", (n, *out_size, kh, kw, c_in), x.dtype)
    padded = scratch.padded("input", x, padding) if padding != (0, 0) else x
    np.copyto(patches, windows(padded, (kh, kw), stride))
    patches = patches.reshape(n * out_size[0] * out_size[1], -1)
    kernel = weight.transpose(2, 3, 1, 0).reshape(-1, c_out)  # rows in the patches' (kh, kw, C_in) order
    out = np.matmul(patches, kernel, out=None if out is None else out.reshape(len(patches), c_out))
    if bias is not None:
        out += bias
    return out.reshape(n, *out_size, c_out), (patches, kernel)


def im2col_backward(saved: tuple[np.ndarray, np.ndarray], g: np.ndarray, weight: np.ndarray, stride: Pair,
                    padding: Pair, in_size: Pair, bias: bool, input_grad: bool, scratch: Scratch) -> Grads:
    """dL/d(weight, bias, x) from the saved patches and g (N, OH, OW, C_out) (see :data:`Grads`)."""
    patches, kernel = saved
    c_out, c_in, kh, kw = weight.shape
    n, oh, ow, _ = g.shape
    g_rows = g.reshape(-1, c_out)  # no copy when g is in the layout this layer returned
    grad_w = (g_rows.T @ patches).reshape(c_out, kh, kw, c_in).transpose(0, 3, 1, 2)
    grad_b = sum_rows(g_rows) if bias else None
    if not input_grad:
        return grad_w, grad_b, None
    grad_patches = scratch.get("grad_patches", patches.shape, g.dtype)
    np.matmul(g_rows, kernel.T, out=grad_patches)
    grad_patches = grad_patches.reshape(n, oh, ow, kh, kw, c_in)
    ph, pw = padding
    grad_x = np.zeros((n, in_size[0] + 2 * ph, in_size[1] + 2 * pw, c_in), dtype=g.dtype)
    add_patches(grad_x, grad_patches, stride)
    return grad_w, grad_b, grad_x[:, ph:ph + in_size[0], pw:pw + in_size[1]]
