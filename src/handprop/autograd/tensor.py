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

>>> x = Tensor([[1.0, -2.0]], requires_grad=True)
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad
array([[ 2., -4.]], dtype=float32)
"""
from __future__ import annotations

from numbers import Number
from typing import Callable, Sequence

import numpy as np

from ..nn import functional as F
from . import grad_mode as _gm

__all__ = ["Tensor"]

_Backward = Callable[[np.ndarray], Sequence["np.ndarray | None"]]

_FREED = ("Trying to backward through the graph a second time (or directly access saved tensors "
          "after they have already been freed). Saved intermediate values of the graph are freed "
          "when you call .backward(). Specify retain_graph=True if you need to backward through "
          "the graph a second time.")


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

    @property
    def T(self) -> Tensor:
        """All axes reversed (the matrix transpose for 2-D)."""
        return self.transpose()

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

        grads: dict[Tensor, np.ndarray] = {self: seed}
        for node in reversed(self._topological_order()):
            g = grads.pop(node, None)
            if g is None:
                continue
            if node._op is None:  # a leaf that requires grad
                node._accumulate(g)
                continue
            if node._retain:
                node._accumulate(g)
            fn = node._backward
            if fn is None:
                raise RuntimeError(_FREED)
            parents = node._parents
            if node._version or node._versions != tuple(p._version for p in parents):
                raise RuntimeError(f"a Tensor needed to compute the gradient of {node._op} was "
                                   f"modified by an in-place operation after it was used")
            if not retain_graph:
                node._backward = None  # frees the saved buffers held by the closure
            for p, pg in zip(parents, fn(g)):
                if pg is None or not p.requires_grad:
                    continue
                if type(pg) is not np.ndarray or pg.dtype != p.data.dtype:
                    pg = np.asarray(pg, dtype=p.data.dtype)
                if pg.shape != p.data.shape:  # a bug in an op's backward, never the user's
                    raise RuntimeError(f"{node._op} produced a gradient of shape {pg.shape} "
                                       f"for an input of shape {p.data.shape}")
                prev = grads.get(p)
                grads[p] = pg if prev is None else prev + pg  # never in place: pg may be shared

    def _topological_order(self) -> list[Tensor]:
        """Nodes requiring grad reachable from self, inputs before outputs (iterative DFS)."""
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for p in node._parents:
                if p.requires_grad and id(p) not in visited:
                    stack.append((p, False))
        return order

    # -- conversion helpers ---------------------------------------------------------------------
    def _operand(self, other) -> tuple[np.ndarray | Number, Tensor | None]:
        """(array or weak Python scalar, Tensor or None) for the other side of a binary op."""
        if isinstance(other, Tensor):
            return other.data, other
        if isinstance(other, np.generic):  # before float: np.float64 subclasses float
            return other.item(), None  # like a Python scalar: never promotes float32 -> float64
        if isinstance(other, (bool, int, float)):
            return other, None
        t = Tensor(other)
        return t.data, t

    def _binary(self, other, fn, name: str, backward_factory, reverse: bool = False) -> Tensor:
        b, bt = self._operand(other)
        a = self.data
        try:
            out = fn(b, a) if reverse else fn(a, b)
        except ValueError:
            sa, sb = a.shape, np.shape(b)
            if reverse:
                sa, sb = sb, sa
            raise ValueError(f"cannot broadcast shapes {sa} and {sb} in {name}") from None
        parents = (self,) if bt is None else (self, bt)
        if not _tracking(parents):
            return _const(out)
        need_b = bt is not None and bt.requires_grad
        return _result(out, parents, backward_factory(a, b, out, self.requires_grad, need_b),
                       name.capitalize() + "Backward")

    # -- arithmetic -----------------------------------------------------------------------------
    def __add__(self, other, _reverse: bool = False) -> Tensor:
        def bw(a, b, out, na, nb):
            sa, sb = a.shape, np.shape(b)
            return lambda g: (_unbroadcast(g, sa) if na else None, _unbroadcast(g, sb) if nb else None)
        return self._binary(other, np.add, "add", bw, _reverse)

    def __radd__(self, other) -> Tensor:
        return self.__add__(other, True)

    def __sub__(self, other) -> Tensor:
        def bw(a, b, out, na, nb):
            sa, sb = a.shape, np.shape(b)
            return lambda g: (_unbroadcast(g, sa) if na else None, _unbroadcast(-g, sb) if nb else None)
        return self._binary(other, np.subtract, "sub", bw)

    def __rsub__(self, other) -> Tensor:
        def bw(a, b, out, na, nb):
            return lambda g: (_unbroadcast(-g, a.shape),)
        return self._binary(other, np.subtract, "rsub", bw, reverse=True)

    def __mul__(self, other, _reverse: bool = False) -> Tensor:
        def bw(a, b, out, na, nb):
            return lambda g: (_unbroadcast(g * b, a.shape) if na else None,
                              _unbroadcast(g * a, np.shape(b)) if nb else None)
        return self._binary(other, np.multiply, "mul", bw, _reverse)

    def __rmul__(self, other) -> Tensor:
        return self.__mul__(other, True)

    def __truediv__(self, other) -> Tensor:
        def bw(a, b, out, na, nb):
            # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -out/b
            return lambda g: (_unbroadcast(g / b, a.shape) if na else None,
                              _unbroadcast(-g * out / b, np.shape(b)) if nb else None)
        return self._binary(other, np.true_divide, "div", bw)

    def __rtruediv__(self, other) -> Tensor:
        def bw(a, b, out, na, nb):
            return lambda g: (_unbroadcast(-g * out / a, a.shape),)
        return self._binary(other, np.true_divide, "rdiv", bw, reverse=True)

    def __pow__(self, exponent) -> Tensor:
        if isinstance(exponent, (bool, int, float, np.generic)) and np.ndim(exponent) == 0:
            p = exponent.item() if isinstance(exponent, np.generic) else exponent
            a = self.data
            out = a ** p
            if not _tracking((self,)):
                return _const(out)

            def backward(g):
                if p == 0:
                    return (np.zeros_like(a),)
                return (g * (p * a if p == 2 else p * a ** (p - 1)),)
            return _result(out, (self,), backward, "PowBackward")

        def bw(a, b, out, na, nb):
            def backward(g):
                ga = gb = None
                with np.errstate(divide="ignore", invalid="ignore"):
                    if na:
                        ga = _unbroadcast(g * b * a ** (b - 1), a.shape)
                    if nb:  # d(a^b)/db = a^b log a, taken as 0 where a == 0 and b >= 0 (as torch)
                        d = np.where((a == 0) & (b >= 0), 0, out * np.log(a))
                        gb = _unbroadcast(g * d, np.shape(b))
                return ga, gb
            return backward
        return self._binary(exponent, np.power, "pow", bw)

    def __rpow__(self, base) -> Tensor:
        def bw(a, b, out, na, nb):
            return lambda g: (_unbroadcast(g * out * np.log(b), a.shape),)
        return self._binary(base, np.power, "rpow", bw, reverse=True)

    def __matmul__(self, other) -> Tensor:
        b, bt = self._operand(other)
        if bt is None:
            b, bt = np.asarray(b), Tensor(b)
        return _matmul(self, bt)

    def __rmatmul__(self, other) -> Tensor:
        return _matmul(Tensor(other) if not isinstance(other, Tensor) else other, self)

    # comparisons give boolean ndarrays (masks), outside the graph; == stays identity (hashable)
    def __lt__(self, other) -> np.ndarray:
        return self.data < self._operand(other)[0]

    def __le__(self, other) -> np.ndarray:
        return self.data <= self._operand(other)[0]

    def __gt__(self, other) -> np.ndarray:
        return self.data > self._operand(other)[0]

    def __ge__(self, other) -> np.ndarray:
        return self.data >= self._operand(other)[0]

    def __neg__(self) -> Tensor:
        return _unary(self, np.negative(self.data), lambda g: -g, "NegBackward")

    # -- in place (data only, never recorded) -----------------------------------------------------
    def _inplace(self, other, fn) -> Tensor:
        if self.requires_grad and _gm._enabled:
            raise RuntimeError("in-place operation on a Tensor that requires grad while grad mode "
                               "is on; do it under `with no_grad():` (e.g. an SGD step)")
        b = other.data if isinstance(other, Tensor) else other
        try:
            fn(self.data, b, out=self.data, casting="same_kind")
        except ValueError:
            raise ValueError(f"cannot broadcast shapes {self.shape} and {np.shape(b)} "
                             f"into {self.shape} in place") from None
        self._version += 1
        return self

    def __iadd__(self, other) -> Tensor:
        return self._inplace(other, np.add)

    def __isub__(self, other) -> Tensor:
        return self._inplace(other, np.subtract)

    def __imul__(self, other) -> Tensor:
        return self._inplace(other, np.multiply)

    def __itruediv__(self, other) -> Tensor:
        return self._inplace(other, np.true_divide)

    # -- reductions -------------------------------------------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (int, tuple or None for all)."""
        a = self.data
        out = np.sum(a, axis=axis, keepdims=keepdims)
        return _unary(self, out, lambda g: _expand(g, axis, keepdims, a.shape), "SumBackward")

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (int, tuple or None for all)."""
        a = self.data
        out = np.mean(a, axis=axis, keepdims=keepdims)
        n = a.size // max(np.size(out), 1) if a.size else 0
        scale = 1.0 / n if n else np.nan
        return _unary(self, out, lambda g: _expand(g * scale, axis, keepdims, a.shape), "MeanBackward")

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; the gradient is split evenly among tied maxima (``torch.amax``)."""
        return self._extreme(np.max, axis, keepdims, "MaxBackward")

    def min(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Minimum over ``axis``; the gradient is split evenly among tied minima (``torch.amin``)."""
        return self._extreme(np.min, axis, keepdims, "MinBackward")

    def _extreme(self, fn, axis, keepdims: bool, name: str) -> Tensor:
        a = self.data
        out = fn(a, axis=axis, keepdims=keepdims)

        def backward(g):
            hit = a == _keep(out, axis, a.shape, keepdims)
            share = hit / hit.sum(axis=axis, keepdims=True)
            return _expand(g, axis, keepdims, a.shape) * share.astype(a.dtype, copy=False)
        return _unary(self, out, backward, name)

    def logsumexp(self, axis=-1, keepdims: bool = False) -> Tensor:
        """log(sum(exp(x))) over ``axis``, computed stably (shifted by the max)."""
        a = self.data
        lse = F.logsumexp(a, axis=axis, keepdims=True)
        out = lse if keepdims else np.squeeze(lse, axis=axis)
        # d lse / dx = softmax(x) = exp(x - lse)
        return _unary(self, out, lambda g: _keep(g, axis, a.shape, keepdims) * np.exp(a - lse),
                      "LogsumexpBackward")

    def log_softmax(self, axis: int = -1) -> Tensor:
        """x - logsumexp(x) over ``axis``: log-probabilities."""
        out = F.log_softmax(self.data, axis=axis)
        # d/dx: g - softmax(x) * sum(g)
        return _unary(self, out, lambda g: g - np.exp(out) * g.sum(axis=axis, keepdims=True),
                      "LogSoftmaxBackward")

    def softmax(self, axis: int = -1) -> Tensor:
        """exp(x) / sum(exp(x)) over ``axis``."""
        out = F.softmax(self.data, axis=axis)
        return _unary(self, out, lambda g: out * (g - (g * out).sum(axis=axis, keepdims=True)),
                      "SoftmaxBackward")

    # -- elementwise --------------------------------------------------------------------------------
    def exp(self) -> Tensor:
        out = np.exp(self.data)
        return _unary(self, out, lambda g: g * out, "ExpBackward")

    def log(self) -> Tensor:
        a = self.data
        return _unary(self, np.log(a), lambda g: g / a, "LogBackward")

    def sqrt(self) -> Tensor:
        out = np.sqrt(self.data)
        return _unary(self, out, lambda g: g / (2 * out), "SqrtBackward")

    def abs(self) -> Tensor:
        a = self.data
        return _unary(self, np.abs(a), lambda g: g * np.sign(a), "AbsBackward")

    def relu(self) -> Tensor:
        a = self.data
        return _unary(self, F.relu(a), lambda g: g * (a > 0), "ReluBackward")

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        a = self.data
        slope = a.dtype.type(negative_slope)
        return _unary(self, F.leaky_relu(a, negative_slope), lambda g: np.where(a > 0, g, g * slope),
                      "LeakyReluBackward")

    def tanh(self) -> Tensor:
        out = F.tanh(self.data)
        return _unary(self, out, lambda g: g * (1 - out * out), "TanhBackward")

    def erf(self) -> Tensor:
        x = self.data
        return _unary(self, F.erf(x), lambda g: g * (2 / np.sqrt(np.pi)) * np.exp(-x * x), "ErfBackward")

    def sigmoid(self) -> Tensor:
        out = F.sigmoid(self.data)
        return _unary(self, out, lambda g: g * out * (1 - out), "SigmoidBackward")

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Clip into [min, max]; the gradient passes where min <= x <= max (as PyTorch)."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        a = self.data
        out = np.clip(a, min, max)

        def backward(g):
            inside = np.ones(a.shape, dtype=bool)
            if min is not None:
                inside &= a >= min
            if max is not None:
                inside &= a <= max
            return g * inside
        return _unary(self, out, backward, "ClampBackward")

    def astype(self, dtype) -> Tensor:
        """Cast to another float dtype (differentiable; the gradient is cast back)."""
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"Tensor holds floating-point data, got dtype={dtype}")
        src = self.data.dtype
        return _unary(self, self.data.astype(dtype), lambda g: g.astype(src), "CastBackward")

    # -- shape ------------------------------------------------------------------------------------
    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        """``t.reshape(2, 3)`` or ``t.reshape((2, 3))``; -1 infers one size."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        a = self.data
        try:
            out = a.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape {a.shape} ({a.size} elements) into {shape}") from None
        return _unary(self, out, lambda g: g.reshape(a.shape), "ReshapeBackward")

    def flatten(self) -> Tensor:
        return self.reshape(-1)

    def squeeze(self, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return self.reshape(np.squeeze(self.data, axis=axis).shape)

    def unsqueeze(self, axis: int) -> Tensor:
        return self.reshape(np.expand_dims(self.data, axis).shape)

    def transpose(self, *axes: int | tuple[int, ...]) -> Tensor:
        """Permute axes as ``numpy.transpose`` (no argument: reverse them)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = axes or None
        out = np.transpose(self.data, axes)
        inverse = None if axes is None else tuple(np.argsort(axes))
        return _unary(self, out, lambda g: np.transpose(g, inverse), "TransposeBackward")

    def __getitem__(self, index) -> Tensor:
        """Basic (ints, slices, None, ...) and integer/bool-array indexing, as NumPy.

        Repeated integer indices accumulate their gradients (``np.add.at``).
        """
        index, advanced = _normalize_index(index)
        a = self.data
        out = a[index]

        def backward(g):
            full = np.zeros(a.shape, dtype=g.dtype)
            if advanced:
                np.add.at(full, index, g)
            else:
                full[index] = g
            return full
        return _unary(self, out, backward, "IndexBackward")


# -- graph construction -----------------------------------------------------------------------
def _tracking(parents: tuple[Tensor, ...]) -> bool:
    if not _gm._enabled:
        return False
    for p in parents:
        if p.requires_grad:
            return True
    return False


def _const(data) -> Tensor:
    """A Tensor outside any graph (fast path: no validation)."""
    t = Tensor.__new__(Tensor)
    t.data = data if type(data) is np.ndarray else np.asarray(data)
    t.grad = None
    t.requires_grad = False
    t._parents, t._backward, t._op, t._versions = (), None, None, ()
    t._version = 0
    t._retain = False
    return t


def _result(data, parents: tuple[Tensor, ...], backward: _Backward, op: str) -> Tensor:
    """The output of an operation: a graph node when recording, else a constant."""
    t = _const(data)
    if _tracking(parents):
        t.requires_grad = True
        t._parents = parents
        t._backward = backward
        t._op = op
        t._versions = tuple(p._version for p in parents)
    return t


def _unary(x: Tensor, out, backward: Callable[[np.ndarray], np.ndarray], op: str) -> Tensor:
    if not (x.requires_grad and _gm._enabled):
        return _const(out)
    return _result(out, (x,), lambda g: (backward(g),), op)


def _matmul(x: Tensor, y: Tensor) -> Tensor:
    a, b = x.data, y.data
    try:
        out = np.matmul(a, b)
    except ValueError:
        if not (a.ndim and b.ndim):
            inner = " (matmul needs operands with at least 1 dimension)"
        elif a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            inner = f" (inner dimensions {a.shape[-1]} and {b.shape[-2 if b.ndim > 1 else 0]} differ)"
        else:
            inner = " (batch dimensions do not broadcast)"
        raise ValueError(f"cannot matmul shapes {a.shape} and {b.shape}{inner}") from None
    if not _tracking((x, y)):
        return _const(out)

    def backward(g):
        na, nb = x.requires_grad, y.requires_grad  # read late: a wrapper may drop the input's grad
        # Promote 1-D operands to matrices as matmul does, so one formula covers every case:
        # dA = g @ B^T and dB = A^T @ g, then undo the broadcasting over batch dimensions.
        a2 = a if a.ndim > 1 else a[None, :]
        b2 = b if b.ndim > 1 else b[:, None]
        g2 = g if b.ndim > 1 else g[..., None]
        g2 = g2 if a.ndim > 1 else g2[..., None, :]
        ga = _unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape) if na else None
        gb = _unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape) if nb else None
        return ga, gb
    return _result(out, (x, y), backward, "MatmulBackward")


# -- gradient helpers ---------------------------------------------------------------------------
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
