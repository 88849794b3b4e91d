"""Arithmetic: ``+ - * / ** @``, negation, comparisons and in-place updates.

A binary op broadcasts as NumPy does; its backward returns one gradient per Tensor side,
summed back down to that side's shape (``_unbroadcast``). Python and NumPy scalars are weak
operands: they never change the dtype and get no gradient. (``pow`` shadows the builtin here.)
"""
from __future__ import annotations

from numbers import Number
from typing import Callable

import numpy as np

from .. import grad_mode as _gm
from ..broadcast import _unbroadcast
from ..engine import _result, _tracking, _unary
from ..tensor import Tensor

# (a, b, out, need_a, need_b) -> the closure g -> (grad of a or None, grad of b or None)
_BackwardFactory = Callable[[np.ndarray, "np.ndarray | Number", np.ndarray, bool, bool], Callable]


def _operand(other) -> tuple[np.ndarray | Number, Tensor | None]:
    """(array or weak Python scalar, Tensor or None) for the other side of a binary op."""
    if isinstance(other, Tensor):
        return other.data, other
    if isinstance(other, np.generic):  # before float: np.float64 subclasses float
        return other.item(), None  # like a Python scalar: never promotes float32 -> float64
    if isinstance(other, (bool, int, float)):
        return other, None
    t = Tensor(other)
    return t.data, t


def _binary(x: Tensor, other, fn, name: str, backward_factory: _BackwardFactory,
            reverse: bool = False) -> Tensor:
    """``fn(x, other)`` (``fn(other, x)`` when ``reverse``) as a node named after ``name``."""
    b, bt = _operand(other)
    a = x.data
    try:
        out = fn(b, a) if reverse else fn(a, b)
    except ValueError:
        sa, sb = a.shape, np.shape(b)
        if reverse:
            sa, sb = sb, sa
        raise ValueError(f"cannot broadcast shapes {sa} and {sb} in {name}") from None
    parents = (x,) if bt is None else (x, bt)
    if not _tracking(parents):
        return Tensor._wrap(out)
    need_b = bt is not None and bt.requires_grad
    return _result(out, parents, backward_factory(a, b, out, x.requires_grad, need_b),
                   name.capitalize() + "Backward")


# -- + and - ----------------------------------------------------------------------------------------
def _add_backward(a, b, out, na, nb):
    sa, sb = a.shape, np.shape(b)
    return lambda g: (_unbroadcast(g, sa) if na else None, _unbroadcast(g, sb) if nb else None)


def add(x: Tensor, other) -> Tensor:
    """``x + other``."""
    return _binary(x, other, np.add, "add", _add_backward)


def radd(x: Tensor, other) -> Tensor:
    """``other + x``."""
    return _binary(x, other, np.add, "add", _add_backward, reverse=True)


def _sub_backward(a, b, out, na, nb):
    sa, sb = a.shape, np.shape(b)
    return lambda g: (_unbroadcast(g, sa) if na else None, _unbroadcast(-g, sb) if nb else None)


def sub(x: Tensor, other) -> Tensor:
    """``x - other``."""
    return _binary(x, other, np.subtract, "sub", _sub_backward)


def _rsub_backward(a, b, out, na, nb):
    return lambda g: (_unbroadcast(-g, a.shape),)


def rsub(x: Tensor, other) -> Tensor:
    """``other - x`` (``other`` is not a Tensor, else its ``__sub__`` would have run)."""
    return _binary(x, other, np.subtract, "rsub", _rsub_backward, reverse=True)


def neg(x: Tensor) -> Tensor:
    """``-x``."""
    return _unary(x, np.negative(x.data), lambda g: -g, "NegBackward")


# -- * and / ----------------------------------------------------------------------------------------
def _mul_backward(a, b, out, na, nb):
    return lambda g: (_unbroadcast(g * b, a.shape) if na else None,
                      _unbroadcast(g * a, np.shape(b)) if nb else None)


def mul(x: Tensor, other) -> Tensor:
    """``x * other``."""
    return _binary(x, other, np.multiply, "mul", _mul_backward)


def rmul(x: Tensor, other) -> Tensor:
    """``other * x``."""
    return _binary(x, other, np.multiply, "mul", _mul_backward, reverse=True)


def _div_backward(a, b, out, na, nb):
    # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -out/b
    return lambda g: (_unbroadcast(g / b, a.shape) if na else None,
                      _unbroadcast(-g * out / b, np.shape(b)) if nb else None)


def div(x: Tensor, other) -> Tensor:
    """``x / other``."""
    return _binary(x, other, np.true_divide, "div", _div_backward)


def _rdiv_backward(a, b, out, na, nb):
    return lambda g: (_unbroadcast(-g * out / a, a.shape),)


def rdiv(x: Tensor, other) -> Tensor:
    """``other / x``."""
    return _binary(x, other, np.true_divide, "rdiv", _rdiv_backward, reverse=True)


# -- ** -----------------------------------------------------------------------------------------------
def pow(x: Tensor, exponent) -> Tensor:
    """``x ** exponent``; a scalar exponent takes a fast path with no exponent gradient."""
    if isinstance(exponent, (bool, int, float, np.generic)) and np.ndim(exponent) == 0:
        return _scalar_pow(x, exponent.item() if isinstance(exponent, np.generic) else exponent)
    return _binary(x, exponent, np.power, "pow", _pow_backward)


def _scalar_pow(x: Tensor, p: Number) -> Tensor:
    a = x.data
    out = a ** p
    if not _tracking((x,)):
        return Tensor._wrap(out)

    def backward(g):
        if p == 0:
            return (np.zeros_like(a),)
        return (g * (p * a if p == 2 else p * a ** (p - 1)),)
    return _result(out, (x,), backward, "PowBackward")


def _pow_backward(a, b, out, na, nb):
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


def _rpow_backward(a, b, out, na, nb):
    return lambda g: (_unbroadcast(g * out * np.log(b), a.shape),)


def rpow(x: Tensor, base) -> Tensor:
    """``base ** x``."""
    return _binary(x, base, np.power, "rpow", _rpow_backward, reverse=True)


# -- @ ------------------------------------------------------------------------------------------------
def matmul(x: Tensor, other) -> Tensor:
    """``x @ other``, as ``numpy.matmul`` (1-D operands and batch dimensions included)."""
    return _matmul(x, other if isinstance(other, Tensor) else Tensor(other))


def rmatmul(x: Tensor, other) -> Tensor:
    """``other @ x``."""
    return _matmul(other if isinstance(other, Tensor) else Tensor(other), x)


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
        return Tensor._wrap(out)

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


# -- comparisons: boolean masks, outside the graph (== stays identity, so Tensors hash) ---------
def lt(x: Tensor, other) -> np.ndarray:
    return x.data < _operand(other)[0]


def le(x: Tensor, other) -> np.ndarray:
    return x.data <= _operand(other)[0]


def gt(x: Tensor, other) -> np.ndarray:
    return x.data > _operand(other)[0]


def ge(x: Tensor, other) -> np.ndarray:
    return x.data >= _operand(other)[0]


# -- in place (data only, never recorded) ---------------------------------------------------------
def _inplace(x: Tensor, other, fn) -> Tensor:
    """``fn(x, other)`` written into ``x.data``; bumps ``x``'s version so stale graphs refuse backward."""
    if x.requires_grad and _gm._enabled:
        raise RuntimeError("in-place operation on a Tensor that requires grad while grad mode "
                           "is on; do it under `with no_grad():` (e.g. an SGD step)")
    b = other.data if isinstance(other, Tensor) else other
    try:
        fn(x.data, b, out=x.data, casting="same_kind")
    except ValueError:
        raise ValueError(f"cannot broadcast shapes {x.shape} and {np.shape(b)} "
                         f"into {x.shape} in place") from None
    x._version += 1
    return x


def iadd(x: Tensor, other) -> Tensor:
    return _inplace(x, other, np.add)


def isub(x: Tensor, other) -> Tensor:
    return _inplace(x, other, np.subtract)


def imul(x: Tensor, other) -> Tensor:
    return _inplace(x, other, np.multiply)


def itruediv(x: Tensor, other) -> Tensor:
    return _inplace(x, other, np.true_divide)


#: The Tensor operators defined here (``ops/__init__.py`` attaches them).
METHODS = {
    "__add__": add, "__radd__": radd, "__sub__": sub, "__rsub__": rsub, "__neg__": neg,
    "__mul__": mul, "__rmul__": rmul, "__truediv__": div, "__rtruediv__": rdiv,
    "__pow__": pow, "__rpow__": rpow, "__matmul__": matmul, "__rmatmul__": rmatmul,
    "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
    "__iadd__": iadd, "__isub__": isub, "__imul__": imul, "__itruediv__": itruediv,
}
