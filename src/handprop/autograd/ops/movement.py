"""Movement: reshape, flatten, squeeze, unsqueeze, transpose, ``T``, indexing, zero padding,
sliding windows (``unfold``) and ``astype``.

These change how the values are laid out (or, for ``astype``, stored), not the values, so each
backward moves the gradient back the inverse way.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..engine import _unary
from ..tensor import Tensor


def reshape(x: Tensor, *shape: int | tuple[int, ...]) -> Tensor:
    """``t.reshape(2, 3)`` or ``t.reshape((2, 3))``; -1 infers one size."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    a = x.data
    try:
        out = a.reshape(shape)
    except ValueError:
        raise ValueError(f"cannot reshape {a.shape} ({a.size} elements) into {shape}") from None
    return _unary(x, out, lambda g: g.reshape(a.shape), "ReshapeBackward")


def flatten(x: Tensor) -> Tensor:
    """All elements in one dimension."""
    return reshape(x, -1)


def squeeze(x: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor:
    """Drop the size-1 dimensions ``axis`` (None: all of them)."""
    return reshape(x, np.squeeze(x.data, axis=axis).shape)


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """Insert a size-1 dimension at ``axis``."""
    return reshape(x, np.expand_dims(x.data, axis).shape)


def transpose(x: Tensor, *axes: int | tuple[int, ...]) -> Tensor:
    """Permute axes as ``numpy.transpose`` (no argument: reverse them)."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    axes = axes or None
    out = np.transpose(x.data, axes)
    inverse = None if axes is None else tuple(np.argsort(axes))
    return _unary(x, out, lambda g: np.transpose(g, inverse), "TransposeBackward")


def getitem(x: Tensor, index) -> Tensor:
    """Basic (ints, slices, None, ...) and integer/bool-array indexing, as NumPy.

    Repeated integer indices accumulate their gradients (``np.add.at``).
    """
    index, advanced = _normalize_index(index)
    a = x.data
    out = a[index]

    def backward(g):
        full = np.zeros(a.shape, dtype=g.dtype)
        if advanced:
            np.add.at(full, index, g)
        else:
            full[index] = g
        return full
    return _unary(x, out, backward, "IndexBackward")


def _normalize_index(index) -> tuple[object, bool]:
    """Tensors -> arrays, lists/ranges -> integer arrays; also report advanced indexing."""
    items = index if isinstance(index, tuple) else (index,)
    out, advanced = [], False
    for it in items:
        if isinstance(it, Tensor):
            it = it.data
        if isinstance(it, (list, range)):
            it = np.asarray(it, dtype=np.intp) if len(it) == 0 else np.asarray(it)
        if isinstance(it, np.ndarray):
            advanced = True
            if it.dtype == bool:  # a mask means its nonzero() positions (so np.add.at accepts it)
                out.extend(it.nonzero())
                continue
        out.append(it)
    return (tuple(out) if isinstance(index, tuple) or len(out) != 1 else out[0]), advanced


def pad(x: Tensor, pad_width: tuple[tuple[int, int], ...]) -> Tensor:
    """Zeros added around each axis: ``pad_width`` is one ``(before, after)`` pair per axis."""
    a = x.data
    pairs = [p for p in pad_width if isinstance(p, (tuple, list)) and len(p) == 2]
    if len(pairs) != len(pad_width) or len(pairs) != a.ndim or not all(_count(n, 0) for p in pairs for n in p):
        raise ValueError(f"pad: pad_width must be one (before, after) pair of non-negative ints per axis "
                         f"({a.ndim} for shape {a.shape}), got {pad_width!r}")
    inside = tuple(slice(before, before + n) for (before, _), n in zip(pairs, a.shape))
    return _unary(x, np.pad(a, pairs), lambda g: g[inside], "PadBackward")


def _count(n, minimum: int) -> bool:
    """True for an int (not a bool) >= ``minimum``."""
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= minimum


def unfold(x: Tensor, axis: int, size: int, step: int) -> Tensor:
    """Every window of ``size`` along ``axis``, ``step`` apart, as ``torch.Tensor.unfold``:
    ``axis`` becomes the window count and a last axis of length ``size`` is appended.

    The backward adds each window's gradient back where it was read (windows overlap when
    ``step < size``): one strided ``+=`` per position in the window.
    """
    a = x.data
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"unfold: axis {axis} is out of range for shape {a.shape}")
    axis %= a.ndim
    for name, n in (("size", size), ("step", step)):
        if not _count(n, 1):
            raise ValueError(f"unfold: {name} must be a positive integer, got {n!r}")
    if size > a.shape[axis]:
        raise ValueError(f"unfold: size {size} is larger than axis {axis} of shape {a.shape}")
    along = (slice(None),) * axis
    out = np.ascontiguousarray(sliding_window_view(a, size, axis=axis)[along + (slice(None, None, step),)])
    count = out.shape[axis]

    def backward(g):
        full = np.zeros(a.shape, dtype=g.dtype)
        for i in range(size):
            full[along + (slice(i, i + step * (count - 1) + 1, step),)] += g[..., i]
        return full
    return _unary(x, out, backward, "UnfoldBackward")


def astype(x: Tensor, dtype) -> Tensor:
    """Cast to another float dtype (differentiable; the gradient is cast back)."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"Tensor holds floating-point data, got dtype={dtype}")
    src = x.data.dtype
    return _unary(x, x.data.astype(dtype), lambda g: g.astype(src), "CastBackward")


#: The Tensor methods defined here (``ops/__init__.py`` attaches them).
METHODS = {
    "reshape": reshape, "flatten": flatten, "squeeze": squeeze, "unsqueeze": unsqueeze,
    "transpose": transpose, "T": property(transpose, doc="All axes reversed (the matrix transpose for 2-D)."),
    "__getitem__": getitem, "pad": pad, "unfold": unfold, "astype": astype,
}
