"""The layer registry: one registration per layer or loss type, beside its class.

A registration says everything the rest of handprop needs to know about a type, so adding a
layer is one class plus one ``@register(...)``:

* ``args``: the constructor arguments a model file records (name, type, allowed values), from
  which :func:`build` rebuilds the layer and :func:`layer_config` describes it;
* ``tensor``: its forward written with :class:`handprop.Tensor` ops, ``layer -> f(x, *params)``
  (a loss: ``f(output, target)``), so autograd gives an independent backward;
* ``torch``: the same forward in PyTorch, ``(torch, layer) -> f(x, *params)`` on torch tensors
  (parameters in handprop's layout), the fourth column of the trust matrix;
* ``cases``: the inputs the trust matrix and the parametrised tests check it on, in float64;
* ``activation`` / ``loss``: the name under which ``handprop train --activation`` / ``--loss``
  offers it;
* ``torch_module``: how it appears in ``torch.nn`` (:class:`TorchModule`), for exporting weights
  to PyTorch and importing them back;
* ``onnx``: how it is written as ONNX nodes (:class:`OnnxExport`), for ``handprop export --to onnx``.

The trust matrix (``handprop gradcheck``), the layer tests, ``build_model`` and the CLI choices
all read this table; nothing else lists the layer types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np


@dataclass(frozen=True)
class Arg:
    """A constructor argument recorded in a model file.

    ``kind`` is int, float, bool, str, ``"layers"`` (a list of nested layer configs) or ``"pair"``
    (an int or ``[height, width]``, e.g. Conv2d's kernel_size; non-negative, positive with ``size``);
    ``size`` marks a dimension (a positive int that a model file must back with its arrays);
    ``positive``: at least 1 without being a dimension (a stride, a pooling window);
    ``read(layer)`` gets the value from a layer where it is not the attribute of that name.
    """

    name: str
    kind: type | str
    choices: tuple = ()
    optional: bool = False
    size: bool = False
    positive: bool = False
    read: Callable[[Any], Any] | None = None

    def check(self, value: Any, where: str) -> Any:
        """``value`` if it is valid for this argument, else a ValueError naming ``where``."""
        if value is None and self.optional:
            return None
        if self.kind == "layers":
            if not isinstance(value, list):
                raise ValueError(f"{where}: {self.name} must be a list of layers, got {type(value).__name__}")
            return value
        if self.kind == "pair":
            from .window import pair
            return pair(value, self.name, where, minimum=1 if self.size or self.positive else 0)
        ok = (isinstance(value, bool) if self.kind is bool else
              isinstance(value, int) and not isinstance(value, bool) if self.kind is int else
              isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
              if self.kind is float else isinstance(value, str))
        if not ok:
            raise ValueError(f"{where}: {self.name} must be {'a finite number' if self.kind is float else self.kind.__name__}"
                             f"{' or null' if self.optional else ''}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{where}: {self.name} must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        if (self.size or self.positive) and value <= 0:
            raise ValueError(f"{where}: {self.name} must be a positive integer, got {value!r}")
        return float(value) if self.kind is float else value


@dataclass(frozen=True)
class Case:
    """One trust-matrix input for a registered type: a float64 instance and how to draw its input.

    The instance is ``make()`` if given, else ``cls(**kwargs)`` (with ``dtype=float64`` added for
    types that take a dtype). The input is standard normal of ``shape`` times ``scale`` unless
    ``make_input(rng)`` is given; ``target(rng)`` draws a loss's target.
    """

    label: str
    shape: tuple[int, ...]
    kwargs: dict = field(default_factory=dict)
    scale: float = 1.0
    make: Callable[[], Any] | None = None
    make_input: Callable[[np.random.Generator], np.ndarray] | None = None
    target: Callable[[np.random.Generator], np.ndarray] | None = None


@dataclass(frozen=True)
class Activation:
    """How ``--activation NAME`` builds this layer (``kwargs``) and which init gain suits it."""

    name: str
    kwargs: dict = field(default_factory=dict)
    gain: str = "relu"


@dataclass(frozen=True)
class TorchModule:
    """How a layer type appears in PyTorch: ``torch.nn.<name>(...)`` and its state-dict entries.

    The constructor arguments are the registration's ``args`` under the same names, and where
    both libraries have a default it must be the same one (a test checks); the ``positional``
    ones are written positionally (a type with a ``"layers"`` argument takes its children
    positionally and numbers them in the state dict, as ``nn.Sequential`` does). ``fixed``: PyTorch
    arguments that must have the one value handprop computes (LogSoftmax's ``dim=-1``);
    ``ignored``: PyTorch arguments that cannot change the result (``inplace``). ``to_torch`` /
    ``from_torch`` map ``(layer, state_dict) -> state_dict`` between the two layouts (Linear
    transposes its weight); without them names and layouts are the same.
    """

    name: str
    positional: tuple[str, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    to_torch: Callable[[Any, dict], dict] | None = None
    from_torch: Callable[[Any, dict], dict] | None = None


@dataclass(frozen=True)
class OnnxExport:
    """How a layer type is written into an ONNX graph (in eval mode).

    ``emit(layer, graph, x) -> y`` adds the layer's nodes to ``graph`` (the small builder of
    :mod:`handprop.interop.onnx`: ``graph.op("Gemm", x, layer.weight.data, transB=0)``, arrays
    becoming initialisers) and returns the name of its output. ``input_shape(layer)``: the shape
    of one sample a model starting with this layer takes (ints, or names for free dimensions),
    for the graph's input and for ``handprop predict``; without it such a model needs the shape
    given.
    """

    emit: Callable[[Any, Any, str], str]
    input_shape: Callable[[Any], tuple[int | str, ...]] | None = None


@dataclass(frozen=True)
class LayerType:
    """Everything registered about one layer or loss class (see the module docstring)."""

    cls: type
    args: tuple[Arg, ...] | None
    tensor: Callable[[Any], Callable] | None
    torch: Callable[[Any, Any], Callable] | None
    cases: tuple[Case, ...]
    activation: Activation | None
    loss: str | None
    torch_module: TorchModule | None = None
    onnx: OnnxExport | None = None

    @property
    def name(self) -> str:
        return self.cls.__name__

    def instance(self, case: Case) -> Any:
        """A fresh float64 instance for ``case``."""
        if case.make is not None:
            return case.make()
        kwargs = dict(case.kwargs)
        if "dtype" in _signature(self.cls):
            kwargs.setdefault("dtype", np.float64)
        return self.cls(**kwargs)


_TYPES: dict[str, LayerType] = {}


def register(*, args: tuple[Arg, ...] | None = (), tensor: Callable | None = None, torch: Callable | None = None,
             cases: tuple[Case, ...] | list[Case] = (), activation: Activation | None = None,
             loss: str | None = None, torch_module: TorchModule | None = None,
             onnx: OnnxExport | None = None) -> Callable[[type], type]:
    """Class decorator: add the class to the registry (``args=None``: not saveable in a model file)."""
    def deco(cls: type) -> type:
        if cls.__name__ in _TYPES and _TYPES[cls.__name__].cls is not cls:
            raise ValueError(f"register: a layer type named {cls.__name__} is registered already")
        _TYPES[cls.__name__] = LayerType(cls, None if args is None else tuple(args), tensor, torch,
                                         tuple(cases), activation, loss, torch_module, onnx)
        return cls
    return deco


def layer_types() -> Iterator[LayerType]:
    """Every registered type, in registration order."""
    return iter(list(_TYPES.values()))


def lookup(obj: Any) -> LayerType:
    """The registration of ``obj`` (an instance or a class; the nearest registered base counts)."""
    cls = obj if isinstance(obj, type) else type(obj)
    for klass in cls.__mro__:
        entry = _TYPES.get(klass.__name__)
        if entry is not None and entry.cls is klass:
            return entry
    raise TypeError(f"{cls.__name__} is not a registered layer type (known: {', '.join(_TYPES)})")


def activations() -> dict[str, LayerType]:
    """``--activation`` name -> registration, in registration order."""
    return {t.activation.name: t for t in _TYPES.values() if t.activation is not None}


def losses() -> dict[str, LayerType]:
    """``--loss`` name -> registration."""
    return {t.loss: t for t in _TYPES.values() if t.loss is not None}


def activation(name: str) -> Any:
    """A new activation layer as ``--activation name`` means it."""
    entry = activations()[name]
    return entry.cls(**entry.activation.kwargs)


# -- model files: a layer <-> its config ------------------------------------------------------------

def layer_config(layer: Any) -> dict[str, Any]:
    """``{"type": name, **recorded args}``: what a model file stores to rebuild ``layer``."""
    entry = lookup(layer)
    if entry.args is None:
        raise ValueError(f"{entry.name} cannot be saved in a model file (it holds Python code)")
    config: dict[str, Any] = {"type": entry.name}
    for arg in entry.args:
        value = arg.read(layer) if arg.read else getattr(layer, arg.name)
        config[arg.name] = [layer_config(child) for child in value] if arg.kind == "layers" else value
    return config


def build(config: dict[str, Any], where: str = "layer", base: type | None = None) -> Any:
    """A new layer (or loss) from :func:`layer_config`'s dict, every argument checked against its
    registration; ``base`` restricts the types allowed (nested layers must be Modules).

    Unknown types, unknown or missing arguments and out-of-range values are ValueErrors naming
    ``where``; nothing is constructed until the whole config has been checked.
    """
    from .module import Module

    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a layer description (a JSON object), got {type(config).__name__}")
    kwargs = dict(config)
    name = kwargs.pop("type", None)
    entry = _TYPES.get(name) if isinstance(name, str) else None
    if entry is None or entry.args is None or (base is not None and not issubclass(entry.cls, base)):
        saveable = ", ".join(t.name for t in _TYPES.values()
                             if t.args is not None and (base is None or issubclass(t.cls, base)))
        raise ValueError(f"{where}: unknown layer type {name!r}; expected one of {saveable}")
    where = f"{where} ({entry.name})"
    allowed = {a.name: a for a in entry.args}
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown argument {unknown[0]!r}; expected {', '.join(allowed) or 'none'}")
    for arg in entry.args:
        if arg.name in kwargs:
            kwargs[arg.name] = arg.check(kwargs[arg.name], where)
            if arg.kind == "layers":
                kwargs[arg.name] = [build(c, f"{where} layer {i}", Module) for i, c in enumerate(kwargs[arg.name])]
        elif not _has_default(entry.cls, arg.name):
            raise ValueError(f"{where}: missing argument {arg.name!r}")
    layers = kwargs.pop("layers", None)
    return entry.cls(*layers, **kwargs) if layers is not None else entry.cls(**kwargs)


def _signature(cls: type) -> dict:
    import inspect
    return dict(inspect.signature(cls).parameters)


def _has_default(cls: type, name: str) -> bool:
    import inspect
    p = _signature(cls).get(name)
    return p is not None and p.default is not inspect.Parameter.empty


# -- the reference forwards ----------------------------------------------------------------------------

def tensor_forward(layer: Any) -> Callable:
    """``layer``'s forward written with Tensor ops (see :func:`register`)."""
    entry = lookup(layer)
    if entry.tensor is None:
        raise TypeError(f"tensor_forward: no Tensor reference for {entry.name}")
    return entry.tensor(layer)


def torch_forward(layer: Any) -> Callable:
    """``layer``'s forward in PyTorch (imported here, on use)."""
    entry = lookup(layer)
    if entry.torch is None:
        raise TypeError(f"torch_forward: no PyTorch reference for {entry.name}")
    import torch
    return entry.torch(torch, layer)


def onnx_export(layer: Any) -> OnnxExport:
    """How ``layer`` is written to ONNX, or a ValueError saying its type has no such registration."""
    entry = lookup(layer)
    if entry.onnx is None:
        raise ValueError(f"{entry.name} has no ONNX export registered")
    return entry.onnx


def input_shape(model: Any) -> tuple[int | str, ...]:
    """The shape of one sample ``model`` takes, as its first layer (in tree order) declares it
    (:class:`OnnxExport`); a ValueError when that layer cannot say."""
    first = next(m for m in model.modules() if not any(True for _ in m.named_children()))
    shape = onnx_export(first).input_shape
    if shape is None:
        raise ValueError(f"cannot tell the input shape of a model starting with {type(first).__name__}; "
                         "give it (the shape of one sample, without the batch axis)")
    return tuple(shape(first))


def chain(fns: list[Callable], param_counts: list[int]) -> Callable:
    """``f(x, *params)`` applying ``fns`` in order, each taking its share of ``params``."""
    def chained(x, *params):
        i = 0
        for f, n in zip(fns, param_counts):
            x, i = f(x, *params[i:i + n]), i + n
        return x
    return chained
