"""Parameter, Module and Sequential: the hand-written backprop contract.

``y = m(x)`` runs ``forward`` and caches what backward needs; ``gx = m.backward(gy)`` returns
dLoss/dx and *adds* dLoss/dp into ``p.grad`` for every Parameter it owns (Torch7's
updateGradInput + accGradParameters). Gradients accumulate until ``zero_grad()``.
``m.backward(gy, input_grad=False)`` adds the same parameter gradients and returns None, skipping
dL/dx. A layer computes dL/dx by default (the notebooks' ``inp.g``); a model (``Sequential``)
only when asked, ``input_grad=True``, as PyTorch only for an input that requires grad, so the
training loop ``model.backward(loss_fn.backward())`` pays for no unused product. A module that
calls its children's backward passes its own ``input_grad`` to the one that reads its input.
Buffers (``register_buffer``) are the non-trainable state a layer keeps, such as BatchNorm's
running statistics: saved in ``state_dict`` with the parameters, never handed to an optimiser.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterator

import numpy as np

from .blas import matmul_add
from .hooks import HookHandle, register_hook


class Parameter:
    """A trainable array and its gradient (an array of the same shape and dtype, zero at first).

    The contract has no hidden state that a layer can break: ``p.grad`` is always an array,
    ``zero_grad()`` zeroes it, and a layer's backward adds into it. Every way of writing it gives
    the same gradient: ``p.grad += dW``, a reference or a view kept to the buffer, or the
    helpers :meth:`accumulate_grad` and :meth:`accumulate_matmul` the built-in layers use.
    Assigning ``p.data`` an array of another dtype or shape re-types the gradient with it.

    Why zero_grad is cheap: a gradient buffer that nothing else holds (no reference, no view:
    Python's reference count says so) can be seen by nobody, so ``zero_grad`` lets it go
    instead of filling it, and whoever touches the gradient next starts from zero: ``p.grad``
    hands out a fresh zero buffer, the helpers write the first gradient straight into a new one
    without reading zeros back (PyTorch's ``zero_grad(set_to_none=True)``, minus the None). A
    buffer that something holds is filled with zeros in place, so the holder stays right.
    """

    __slots__ = ("_data", "_grad")

    def __init__(self, data: np.ndarray):
        self._data = np.ascontiguousarray(data)
        self._grad: np.ndarray | None = None  # None: zero, no buffer yet (see the class docstring)

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        value = np.ascontiguousarray(value)
        if self._grad is not None:
            if value.shape != self._grad.shape:
                self._grad = None  # a gradient of another shape is meaningless: zero
            elif value.dtype != self._grad.dtype:
                self._grad = self._grad.astype(value.dtype)  # keep what was accumulated, as Module.to
        self._data = value

    @property
    def grad(self) -> np.ndarray:
        grad = self._grad
        if grad is None:
            grad = self._grad = np.zeros_like(self._data)
        return grad

    @grad.setter
    def grad(self, value: np.ndarray) -> None:
        value = np.asarray(value)
        if value.shape != self._data.shape or value.dtype != self._data.dtype:
            raise ValueError(f"{self!r}: assigned grad of shape {value.shape} and dtype {value.dtype}; "
                             f"expected {self._data.shape} {self._data.dtype}")
        self._grad = value

    def accumulate_grad(self, value: np.ndarray) -> None:
        """``grad += value`` for a ``value`` of the parameter's shape (nothing broadcasts; another
        float dtype is cast, as ``+=`` does)."""
        if value.shape != self._data.shape:
            raise ValueError(f"{self!r}: accumulate_grad got shape {value.shape}, expected {self._data.shape}")
        if self._grad is None:
            self._grad = np.array(value, dtype=self._data.dtype, order="C")  # a copy: the caller may reuse it
        else:
            self._grad += value

    def accumulate_matmul(self, a: np.ndarray, b: np.ndarray) -> None:
        """``grad += a @ b`` for 2-D ``a`` (m, k), ``b`` (k, n) (a weight gradient): one GEMM that
        adds into the buffer, or writes a new one when the gradient has none."""
        if a.ndim != 2 or b.ndim != 2 or (a.shape[0], b.shape[1]) != self._data.shape:
            raise ValueError(f"{self!r}: accumulate_matmul got {a.shape} @ {b.shape}, "
                             f"expected a product of shape {self._data.shape}")
        if self._grad is None:
            self._grad = (a @ b).astype(self._data.dtype, copy=False)
        else:
            matmul_add(a, b, self._grad)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    def zero_grad(self) -> None:
        """Zero the gradient: fill a buffer someone holds in place, let go of one nobody holds."""
        if self._grad is not None:
            if self._grad_refcount() > _SOLE_HOLDER_REFCOUNT:
                self._grad.fill(0)
            else:
                self._grad = None

    def _grad_refcount(self) -> int:
        return sys.getrefcount(self._grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self._data.shape}, dtype={self._data.dtype})"


def _sole_holder_refcount() -> int:
    """What ``_grad_refcount`` reads for a buffer only its Parameter holds (measured, not
    assumed: the count includes the call's own temporary references)."""
    probe = Parameter(np.zeros(1))
    probe.grad  # noqa: B018 (creates the buffer; the returned reference is dropped at once)
    return probe._grad_refcount()


_SOLE_HOLDER_REFCOUNT = _sole_holder_refcount()


class ForwardCache:
    """What a forward keeps for its backward: saved once, taken once."""

    training: bool = True

    def _save(self, *tensors: Any) -> None:
        """Keep what backward needs (only in training mode: eval-mode inference keeps nothing)."""
        if self.training:
            self._cache = tensors

    def _saved(self) -> tuple:
        """Take the forward cache, once: backward without a forward is a usage error."""
        cache = self.__dict__.pop("_cache", None)
        if cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward() "
                               "(or twice for one forward, or after a forward in eval mode)")
        return cache


class Module(ForwardCache):
    """Base class: subclasses implement ``forward`` and ``backward``; the rest is bookkeeping."""

    #: Names of this module's buffers, in registration order (see :meth:`register_buffer`).
    _buffers: tuple[str, ...] = ()

    def __call__(self, *args: Any) -> Any:
        return self.forward(*args)

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Return dLoss/dinput (None when ``input_grad`` is False) and add parameter gradients."""
        raise NotImplementedError(f"{type(self).__name__}.backward")

    # -- hooks (see handprop.nn.hooks) ---------------------------------------------------------
    def register_forward_hook(self, fn: Callable[[Module, tuple, Any], None]) -> HookHandle:
        """Call ``fn(self, input, output)`` after every forward; ``handle.remove()`` undoes it."""
        return register_hook(self, "forward", fn)

    def register_backward_hook(self, fn: Callable[[Module, tuple, tuple], None]) -> HookHandle:
        """Call ``fn(self, grad_input, grad_output)`` after every backward; ``handle.remove()`` undoes it."""
        return register_hook(self, "backward", fn)

    # -- tree walking -----------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) in attribute order, children included; each once."""
        seen: set[int] = set()
        for name, p in self._walk_parameters(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _walk_parameters(self, prefix: str) -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            items = enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]
            for i, item in items:
                full = prefix + (name if i is None else f"{name}.{i}")
                if isinstance(item, Parameter):
                    yield full, item
                elif isinstance(item, Module):
                    yield from item._walk_parameters(full + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    def _named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted prefix ending in '.', or '' for self, module) in tree order; each module once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) not in seen:
                seen.add(id(m))
                yield name, m
                stack.extend((f"{name}{child_name}.", child)
                             for child_name, child in reversed(list(m.named_children())))

    # -- buffers -----------------------------------------------------------------------------
    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Keep ``value`` as the attribute ``name``: state saved in ``state_dict`` but not trained.

        For running statistics and counters (BatchNorm's ``running_mean``, ``num_batches_tracked``).
        The attribute may be reassigned later; ``state_dict`` reads it by name.
        """
        if not (isinstance(name, str) and name.isidentifier()) or name in self._buffers:
            raise ValueError(f"{type(self).__name__}.register_buffer: expected a new attribute name, got {name!r}")
        if hasattr(self, name):
            raise ValueError(f"{type(self).__name__}.register_buffer: attribute {name!r} exists already")
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{type(self).__name__}.register_buffer: {name} must be a numpy array, "
                             f"got {type(value).__name__}")
        setattr(self, name, value)
        self._buffers = (*self._buffers, name)

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """(dotted name, array) of every buffer, children included, in tree order."""
        for module_prefix, m in self._named_modules(prefix):
            for name in m._buffers:
                yield module_prefix + name, getattr(m, name)

    # -- state -------------------------------------------------------------------------------
    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            m.training = mode
            m.__dict__.pop("_cache", None)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, dtype: np.dtype | type) -> Module:
        """Cast every parameter (data and grad) and every floating-point buffer to ``dtype`` in
        place, e.g. float64 for gradcheck; integer buffers (counters) keep their type, as in torch."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)  # the gradient buffer follows, values kept (torch's Module.to)
        for _, m in self._named_modules():
            for name in m._buffers:
                value = getattr(m, name)
                if np.issubdtype(value.dtype, np.floating):
                    setattr(m, name, value.astype(dtype))
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's data, then of every buffer, by dotted name."""
        return {name: array.copy() for name, array in self._state_arrays().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters and buffers (cast to each one's dtype); names and shapes
        must match exactly, and on any mismatch nothing is changed."""
        targets = self._state_arrays()
        missing, unexpected = targets.keys() - state.keys(), state.keys() - targets.keys()
        if missing or unexpected:
            raise ValueError(f"{type(self).__name__}.load_state_dict: missing {sorted(missing)}, "
                             f"unexpected {sorted(unexpected)}")
        values = {name: np.asarray(state[name]) for name in targets}
        for name, target in targets.items():  # validate everything before copying anything
            if values[name].shape != target.shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: {name} expected shape "
                                 f"{target.shape}, got {values[name].shape}")
        for name, target in targets.items():
            target[...] = values[name]

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """The live arrays ``state_dict`` copies: parameters' data, then buffers."""
        return {**{name: p.data for name, p in self.named_parameters()}, **dict(self.named_buffers())}

    # -- printing ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name.split('.')[-1]}): {body}")
        return "\n".join(lines) + "\n)"
