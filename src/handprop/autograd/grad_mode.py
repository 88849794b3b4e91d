"""Grad mode: whether Tensor operations record a graph.

``no_grad()`` turns recording off (for evaluation and parameter updates), ``enable_grad()``
turns it back on inside a ``no_grad`` block, ``set_grad_enabled(mode)`` does either. All three
work as context managers and as decorators, and they nest. The mode is process-wide (not
per-thread, unlike PyTorch): handprop computes graphs on one thread.

>>> from handprop.autograd import Tensor, no_grad
>>> w = Tensor([1.0, 2.0], requires_grad=True)
>>> with no_grad():
...     y = w * 2
>>> y.requires_grad
False
"""
from __future__ import annotations

import functools

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]

_enabled = True


def is_grad_enabled() -> bool:
    """True when Tensor operations record a graph for ``backward()``."""
    return _enabled


def _set(mode: bool) -> None:
    global _enabled
    _enabled = bool(mode)


class _GradMode:
    """Base of the grad-mode context managers: sets ``_mode`` on enter, restores on exit."""

    _mode: bool

    def __init__(self) -> None:
        self._saved: list[bool] = []  # a stack, so one instance can be re-entered (decorator + recursion)

    def __enter__(self) -> None:
        self._saved.append(_enabled)
        _set(self._mode)

    def __exit__(self, *exc: object) -> None:
        _set(self._saved.pop())

    def __call__(self, fn):
        """Use as a decorator: ``@no_grad()`` runs ``fn`` in this mode."""

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        return wrapper

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class no_grad(_GradMode):
    """Context manager / decorator: operations inside record no graph (outputs never require grad)."""

    _mode = False


class enable_grad(_GradMode):
    """Context manager / decorator: re-enable graph recording (e.g. inside a ``no_grad`` block)."""

    _mode = True


class set_grad_enabled(_GradMode):
    """Set grad mode to ``mode``. As a function call it takes effect at once (like PyTorch);
    as a context manager the previous mode is restored on exit."""

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self._mode = bool(mode)
        self._prev: bool | None = _enabled
        _set(self._mode)

    def __enter__(self) -> None:
        # The first entry right after construction restores the mode from before the constructor.
        self._saved.append(_enabled if self._prev is None else self._prev)
        self._prev = None
        _set(self._mode)

    def __call__(self, fn):
        """As a decorator the constructor's immediate effect is undone; ``fn`` runs in ``mode``."""
        if self._prev is not None:
            _set(self._prev)
            self._prev = None
        return super().__call__(fn)

    def __repr__(self) -> str:
        return f"set_grad_enabled({self._mode})"
