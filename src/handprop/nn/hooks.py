"""Forward and backward hooks: watch what flows through a layer without changing the layer.

``layer.register_forward_hook(fn)`` calls ``fn(layer, input, output)`` after every forward,
``input`` being the tuple of arguments; ``layer.register_backward_hook(fn)`` calls
``fn(layer, grad_input, grad_output)`` after every backward, both 1-tuples as in PyTorch's full
backward hooks (``grad_input`` is ``(None,)`` when the caller asked for no input gradient).
Hooks fire in registration order. Each registration returns a :class:`HookHandle`; its
``remove()`` (or leaving its ``with`` block) unregisters the hook.

Hooks observe, they never replace: a hook returning anything but None is an error, because a
hand-written backward cannot follow an output changed behind its back.

No cost without hooks: the first hook of a kind binds a wrapper onto the instance (an
attribute ``forward`` or ``backward`` shadowing the class's method) and removing the last one
deletes it, so a layer without hooks runs its class's methods untouched. Containers call
their children through the instance, so hooks on the layers inside a Sequential fire too.
"""
from __future__ import annotations

import itertools
import types
from typing import Any, Callable, Iterable

_KINDS = ("forward", "backward")
_TABLE = {"forward": "_forward_hooks", "backward": "_backward_hooks"}  # instance attribute: key -> fn
_keys = itertools.count()


class HookHandle:
    """One registered hook: ``remove()`` it, or use the handle as a context manager."""

    def __init__(self, module: Any, kind: str, key: int):
        self.module, self.kind, self.key = module, kind, key

    def remove(self) -> None:
        """Unregister the hook (again: nothing happens); the last one removed unwraps the layer."""
        table = self.module.__dict__.get(_TABLE[self.kind])
        if table is None or self.key not in table:
            return
        del table[self.key]
        if not table:
            del self.module.__dict__[_TABLE[self.kind]], self.module.__dict__[self.kind]

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class HookGroup:
    """Several handles removed together (fast.ai's ``Hooks``): ``remove()`` or a ``with`` block."""

    def __init__(self, handles: Iterable[HookHandle] = ()):
        self.handles = list(handles)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def __enter__(self) -> HookGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def named_layers(model: Any, leaves_only: bool = True) -> dict[Any, str]:
    """Every module of ``model`` -> its dotted name (``layers.0``; the class name for ``model``
    itself), each once, in tree order; only those without children (what hooks usually watch)
    unless ``leaves_only`` is False."""
    return {m: prefix.rstrip(".") or type(m).__name__ for prefix, m in model._named_modules()
            if not leaves_only or next(m.named_children(), None) is None}


def register_hook(module: Any, kind: str, fn: Callable[..., None]) -> HookHandle:
    """Add ``fn`` to ``module``'s ``kind`` ('forward' or 'backward') hooks; see the module docstring."""
    if kind not in _KINDS:
        raise ValueError(f"register_hook: kind must be 'forward' or 'backward', got {kind!r}")
    if not callable(fn):
        raise ValueError(f"{type(module).__name__}.register_{kind}_hook: expected a callable "
                         f"fn(module, ...), got {type(fn).__name__}")
    table = module.__dict__.get(_TABLE[kind])
    if table is None:
        if kind in module.__dict__:
            raise ValueError(f"{type(module).__name__}.register_{kind}_hook: this instance has its own "
                             f"{kind} attribute; hooks wrap the class's method")
        table = module.__dict__[_TABLE[kind]] = {}
        wrapper = _forward_with_hooks if kind == "forward" else _backward_with_hooks
        module.__dict__[kind] = types.MethodType(wrapper, module)  # bound: deepcopy rebinds it
    key = next(_keys)
    table[key] = fn
    return HookHandle(module, kind, key)


def _forward_with_hooks(self: Any, *args: Any) -> Any:
    output = type(self).forward(self, *args)
    for fn in tuple(self.__dict__[_TABLE["forward"]].values()):
        _check_observed(fn(self, args, output), fn, self, "forward")
    return output


def _backward_with_hooks(self: Any, grad_output: Any, *args: Any, **kwargs: Any) -> Any:
    grad_input = type(self).backward(self, grad_output, *args, **kwargs)  # (the class's own input_grad default)
    for fn in tuple(self.__dict__[_TABLE["backward"]].values()):
        _check_observed(fn(self, (grad_input,), (grad_output,)), fn, self, "backward")
    return grad_input


def _check_observed(result: Any, fn: Callable, module: Any, kind: str) -> None:
    if result is not None:
        name = getattr(fn, "__qualname__", type(fn).__name__)
        raise ValueError(f"{kind} hook {name} on {module!r} returned {type(result).__name__}; hooks "
                         "observe and must return None (a hand-written backward cannot follow a "
                         "replaced value)")
