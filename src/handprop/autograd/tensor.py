"""Tensor: reverse-mode automatic differentiation over NumPy arrays.

A Tensor wraps an ndarray (``.data``). When grad mode is on and any input requires grad, each
operation returns a Tensor that remembers its inputs and a closure computing the
vector-Jacobian product; ``loss.backward()`` walks that graph once in reverse topological
order (iteratively, so a 10,000-op chain is fine) and *adds* dLoss/dleaf into ``leaf.grad``.

Semantics follow PyTorch where it has an opinion:

* Leaf grads accumulate across ``backward()`` calls until ``zero_grad()`` (which sets
  ``.grad`` to None, PyTorch's default; ``zero_grad(set_to_none=False)`` fills zeros).
  Non-leaf Tensors keep no ``.grad`` unless ``retain_grad()`` was called.
* ``backward()`` frees the closures (the saved buffers) of the graph it ran through; a second
  ``backward()`` through it raises RuntimeError unless the first passed ``retain_graph=True``.
* Python scalars never change the dtype (``float32_tensor * 0.5`` stays float32); two Tensors
  of different float dtypes promote like NumPy. A Tensor always holds floating-point data:
  Python numbers and lists become float32, integer/bool arrays become float32, float arrays
  are wrapped without a copy (so a Tensor can share memory with a Parameter).
* ``max``/``min`` reductions split the gradient evenly among tied maxima (``torch.amax``).
* ``relu`` and ``clamp`` pass gradient as PyTorch does: relu where x > 0, clamp where
  min <= x <= max (boundaries included).
* In-place operators (``+=`` ...) are refused on a Tensor that requires grad while grad mode
  is on (use them in ``no_grad()``, e.g. for an SGD step); a graph that saved a Tensor later
  modified in place raises on backward instead of returning wrong gradients.

This module holds the Tensor itself (its data, gradient and leaf bookkeeping); the backward
walk is in ``engine.py``, and the operations, each forward beside its backward, are in
``ops/`` by family (arithmetic, unary, reduction, movement), which makes them Tensor methods.

>>> x = Tensor([[1.0, -2.0]], requires_grad=True)
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad
array([[ 2., -4.]], dtype=float32)
"""
from __future__ import annotations

import numpy as np

from . import engine
from .engine import _Backward
from .engine import _result  # noqa: F401  (module.py builds its nodes with it, imported from here)

__all__ = ["Tensor"]


class Tensor:
    """An ndarray that records the operations applied to it, for ``backward()``.

    Args:
        data: array-like. Float arrays are wrapped as they are (no copy, dtype kept); Python
            scalars/lists and integer or bool arrays become float32 unless ``dtype`` is given.
        requires_grad: track operations on this (leaf) Tensor and fill ``.grad`` on backward.
        dtype: a floating dtype to convert to.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op", "_versions",
                 "_version", "_retain", "__weakref__")
    __array_ufunc__ = None  # ndarray <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is not None:
            dtype = np.dtype(dtype)
            if not np.issubdtype(dtype, np.floating):
                raise TypeError(f"Tensor holds floating-point data, got dtype={dtype}")
            arr = np.asarray(data, dtype=dtype)
        elif isinstance(data, (np.ndarray, np.generic)) and np.issubdtype(data.dtype, np.floating):
            arr = np.asarray(data)
        else:
            arr = np.asarray(data, dtype=np.float32)  # Python numbers, lists, int/bool arrays
        self.data: np.ndarray = arr
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward: _Backward | None = None
        self._op: str | None = None
        self._versions: tuple[int, ...] = ()
        self._version = 0
        self._retain = False

    @classmethod
    def _wrap(cls, data) -> Tensor:
        """A Tensor around ``data`` outside any graph: the fast path for op outputs (no checks)."""
        t = cls.__new__(cls)
        t.data = data if type(data) is np.ndarray else np.asarray(data)
        t.grad = None
        t.requires_grad = False
        t._parents, t._backward, t._op, t._versions = (), None, None, ()
        t._version = 0
        t._retain = False
        return t

    # -- properties ---------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape, doc="Shape of ``data``.")
    dtype = property(lambda self: self.data.dtype, doc="dtype of ``data``.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    size = property(lambda self: self.data.size, doc="Number of elements.")

    @property
    def is_leaf(self) -> bool:
        """True for Tensors created by the user (not by a recorded operation)."""
        return self._op is None

    @property
    def grad_fn(self) -> str | None:
        """Name of the operation that produced this Tensor (e.g. ``'MulBackward'``), or None."""
        return self._op

    def item(self) -> float:
        """The single value as a Python float."""
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        return bool(self.data.item()) if self.data.size == 1 else bool(self.data)

    def __float__(self) -> float:
        return float(self.data.item())  # any single-element Tensor, as PyTorch

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(t)`` gives ``t.data`` (NumPy ufuncs on Tensors are refused instead)."""
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extra = f", dtype={self.dtype}" if self.dtype != np.float32 else ""
        if self._op is not None:
            extra += f", grad_fn=<{self._op}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # -- graph bookkeeping --------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` on a leaf, in place; returns self."""
        if not self.is_leaf:
            raise RuntimeError("requires_grad can only be changed on leaf Tensors; use detach() first")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """A new leaf sharing ``data``, cut from the graph (requires_grad=False)."""
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Make backward() also fill ``.grad`` of this non-leaf Tensor."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a Tensor that does not require grad")
        self._retain = True
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the accumulated gradient: None (default, as PyTorch) or zeros in place."""
        if set_to_none or self.grad is None:
            self.grad = None
        else:
            self.grad.fill(0)

    def _accumulate(self, g: np.ndarray) -> None:
        """Add ``g`` into ``.grad`` (the walk calls this for leaves and retained non-leaves)."""
        if self.grad is None:
            self.grad = np.array(g, dtype=self.data.dtype, copy=True)  # own it: g may be shared
        else:
            self.grad += g

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Add d(self)/d(leaf), weighted by ``gradient``, into ``.grad`` of every leaf that requires grad.

        ``gradient`` defaults to 1 and may only be omitted for a single-element Tensor.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a Tensor that does not require grad: no graph was "
                               "recorded (no input had requires_grad=True, or it ran under no_grad())")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs: this "
                                   f"Tensor has shape {self.shape}; pass backward(gradient=...) "
                                   f"of that shape, or reduce it first (e.g. .sum())")
            seed = np.ones_like(self.data)
        else:
            seed = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient)
            if seed.shape != self.shape:
                raise ValueError(f"backward(gradient=...) has shape {seed.shape}, "
                                 f"but the Tensor has shape {self.shape}")
            seed = seed.astype(self.dtype, copy=False)

        engine.backward(self, seed, retain_graph)
