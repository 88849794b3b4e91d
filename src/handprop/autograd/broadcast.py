"""Broadcasting helpers for backward passes: the adjoints of NumPy's implicit shape changes.

A forward op that broadcasts an input up to a larger shape must sum the gradient back down
(``_unbroadcast``); a reduction that drops axes must put them back before its gradient can
broadcast against the input (``_keep``, ``_expand``).
"""
from __future__ import annotations

import numpy as np


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` down to ``shape``: the adjoint of broadcasting ``shape`` up to ``g.shape``."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return np.asarray(g)


def _keep(g, axis, shape: tuple[int, ...], keepdims: bool = False):
    """Re-insert the reduced ``axis`` as size-1 dimensions, so ``g`` broadcasts against ``shape``."""
    if keepdims or (axis is None and np.ndim(g) == 0):
        return g
    nd = len(shape)
    if axis is None:
        axes = range(nd)
    elif isinstance(axis, (int, np.integer)):
        axes = (axis % nd,)
    else:
        axes = tuple(a % nd for a in axis)
    return np.reshape(g, tuple(1 if i in axes else n for i, n in enumerate(shape)))


def _expand(g, axis, keepdims: bool, shape: tuple[int, ...]) -> np.ndarray:
    """The gradient of a reduction: ``g`` broadcast back over the reduced axes."""
    out = np.empty(shape, dtype=np.result_type(g))
    out[...] = _keep(g, axis, shape, keepdims)  # faster than np.broadcast_to for small arrays
    return out
