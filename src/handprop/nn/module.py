"""Parameter, Module and Sequential: the hand-written backprop contract.

``y = m(x)`` runs ``forward`` and caches what backward needs; ``gx = m.backward(gy)`` returns
dLoss/dx and *adds* dLoss/dp into ``p.grad`` for every Parameter it owns (Torch7's
updateGradInput + accGradParameters). Gradients accumulate until ``zero_grad()``.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np


class Parameter:
    """A trainable array with its gradient buffer (same shape and dtype, starts at zero).

    The buffer also knows when it is *known to be zero*: from ``zero_grad()`` until anyone
    takes ``.grad`` (who may write into it) or a layer accumulates into it. Layers use
    :meth:`accumulate_matmul` / :meth:`accumulate_sum`, which then write the product straight
    into the buffer instead of computing a temporary and adding it (same values: 0 + v == v).
    So write gradients through ``p.grad`` itself, not through a reference kept from before
    ``zero_grad()``: the buffer is the same object, but its known-zero state is not.
    """

    __slots__ = ("data", "_grad", "_grad_is_zero")

    def __init__(self, data: np.ndarray):
        self.data = np.ascontiguousarray(data)
        self._grad = np.zeros_like(self.data)
        self._grad_is_zero = True

    @property
    def grad(self) -> np.ndarray:
        self._grad_is_zero = False  # the caller may write into the buffer
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray) -> None:
        self._grad = value
        self._grad_is_zero = False

    def accumulate_matmul(self, a: np.ndarray, b: np.ndarray) -> None:
        """``grad += a @ b`` (into the buffer directly when it is known to be zero)."""
        if self._grad_is_zero:
            np.matmul(a, b, out=self._grad)
            self._grad_is_zero = False
        else:
            self._grad += a @ b

    def accumulate_sum(self, g: np.ndarray) -> None:
        """``grad += g.sum(axis=0)`` (into the buffer directly when it is known to be zero)."""
        if self._grad_is_zero:
            np.add.reduce(g, axis=0, out=self._grad)  # (the ufunc: no np.sum wrapper overhead)
            self._grad_is_zero = False
        else:
            self._grad += np.add.reduce(g, axis=0)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def zero_grad(self) -> None:
        """Zero the gradient buffer in place (the buffer is reused, so references to it stay valid)."""
        if not self._grad_is_zero:
            self._grad.fill(0)
            self._grad_is_zero = True

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: subclasses implement ``forward`` and ``backward``; the rest is bookkeeping."""

    training: bool = True

    def __call__(self, *args: Any) -> Any:
        return self.forward(*args)

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Return dLoss/dinput (None when ``input_grad`` is False) and add parameter gradients."""
        raise NotImplementedError(f"{type(self).__name__}.backward")

    # -- the forward cache ------------------------------------------------------------------
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
        """Cast every parameter (data and grad) to ``dtype`` in place, e.g. float64 for gradcheck."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = p.grad.astype(dtype)  # keep accumulated gradients, like torch's Module.to
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's data, by dotted name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters (cast to each parameter's dtype); names and shapes must
        match exactly, and on any mismatch nothing is changed."""
        params = dict(self.named_parameters())
        missing, unexpected = params.keys() - state.keys(), state.keys() - params.keys()
        if missing or unexpected:
            raise ValueError(f"{type(self).__name__}.load_state_dict: missing {sorted(missing)}, "
                             f"unexpected {sorted(unexpected)}")
        values = {name: np.asarray(state[name]) for name in params}
        for name, p in params.items():  # validate everything before copying anything
            if values[name].shape != p.data.shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: {name} expected shape "
                                 f"{p.data.shape}, got {values[name].shape}")
        for name, p in params.items():
            p.data[...] = values[name]

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


class Sequential(Module):
    """Layers applied in order; backward walks them in reverse."""

    def __init__(self, *layers: Module):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: argument {i} is {type(layer).__name__}, not a Module")
        self.layers = list(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        g = grad_output
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            g = self.layers[i].backward(g, input_grad or i > 0)
        return g

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)
