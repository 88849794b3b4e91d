"""``summary(model, input_shape)``: each layer's output shape, parameters and multiply-adds.

Shapes come from running the model once, in eval mode, on a zero batch of one sample, with a
forward hook on every layer that has no children (rows follow the calls, so a layer used twice
has two rows; the totals count its parameters once). Multiply-adds are those with a learned
weight, per sample, by a rule per layer type, looked up by class name so that layer types
added later (Conv2d) need only a rule here:

* ``Linear``: every output element is a dot product of ``in_features`` weights;
* ``Conv1d``/``Conv2d``/``Conv3d``: every output element uses ``weight.size / out_channels``;
* ``BatchNorm1d``/``BatchNorm2d``/``LayerNorm``: one scale-and-shift per output element.

Layers without parameters count 0; a layer type with parameters and no rule shows ``?`` and is
left out of the total (the table says so).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .nn.hooks import HookGroup, named_layers
from .nn.module import Module


def _per_output_channel(layer: Any, output: np.ndarray) -> int:
    return output.size * (layer.weight.data.size // layer.out_channels)


def _affine_per_element(layer: Any, output: np.ndarray) -> int:
    return output.size if layer.parameters() else 0


#: Class name -> multiply-adds of one call, given the layer and its (one-sample) output.
MULTIPLY_ADDS: dict[str, Callable[[Any, np.ndarray], int]] = {
    "Linear": lambda layer, output: output.size * layer.in_features,
    "Conv1d": _per_output_channel,
    "Conv2d": _per_output_channel,
    "Conv3d": _per_output_channel,
    "BatchNorm1d": _affine_per_element,
    "BatchNorm2d": _affine_per_element,
    "LayerNorm": _affine_per_element,
}


@dataclass(frozen=True)
class LayerRow:
    """One call of one layer: its dotted name, description, output shape (batch dimension
    first), parameter count and multiply-adds per sample (None: no rule for its type)."""

    name: str
    layer: str
    output_shape: tuple[int, ...]
    params: int
    multiply_adds: int | None


@dataclass(frozen=True)
class Summary:
    """The table :func:`summary` builds; ``str()`` formats it."""

    input_shape: tuple[int, ...]
    rows: tuple[LayerRow, ...]
    total_params: int
    param_bytes: int
    buffer_values: int

    @property
    def total_multiply_adds(self) -> int:
        """Per sample, over the rows that have a rule."""
        return sum(row.multiply_adds or 0 for row in self.rows)

    def __str__(self) -> str:
        header = ("layer", "type", "output shape", "params", "mult-adds")
        body = [(row.name, row.layer, _shape(row.output_shape), f"{row.params:,}",
                 "?" if row.multiply_adds is None else f"{row.multiply_adds:,}") for row in self.rows]
        total = ("total", "", "", f"{self.total_params:,}", f"{self.total_multiply_adds:,}")
        widths = [max(len(r[i]) for r in (header, *body, total)) for i in range(5)]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        rule = "-" * len(line(header))
        notes = [f"input {_shape((1, *self.input_shape))}; multiply-adds are per sample, "
                 f"parameters {self.param_bytes / 1024:,.1f} KiB"
                 + (f", buffers {self.buffer_values:,} values" if self.buffer_values else "")]
        unknown = sorted({row.layer.partition("(")[0] for row in self.rows if row.multiply_adds is None})
        if unknown:
            notes.append(f"?: no multiply-add rule for {', '.join(unknown)} (left out of the total)")
        return "\n".join([line(header), rule, *map(line, body), rule, line(total), *notes])


def summary(model: Module, input_shape: tuple[int, ...]) -> Summary:
    """The :class:`Summary` of ``model`` for inputs of ``input_shape``: one sample's shape,
    without the batch dimension, e.g. ``(784,)`` for an MLP on MNIST."""
    if not isinstance(model, Module):
        raise ValueError(f"summary: expected a Module, got {type(model).__name__}")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ValueError(f"summary: input_shape must be a tuple of positive integers (one sample's "
                         f"shape, without the batch dimension), got {input_shape!r}")
    names = named_layers(model)
    params = model.parameters()
    rows: list[LayerRow] = []

    def record(layer: Module, inputs: tuple, output: Any) -> None:
        out = np.asarray(output)
        rule = _rule(layer)
        own = sum(p.data.size for p in layer.parameters())
        macs = rule(layer, out[0]) if rule else (0 if own == 0 else None)
        rows.append(LayerRow(names[layer], repr(layer), out.shape, own, macs))

    modes = [(m, m.training) for m in model.modules()]
    dtype = params[0].dtype if params else np.float32
    try:
        with HookGroup(m.register_forward_hook(record) for m in names):
            model.eval()
            model(np.zeros((1, *shape), dtype=dtype))
    except ValueError as e:
        raise ValueError(f"summary: the model rejects an input of shape {_shape((1, *shape))}: {e}") from None
    finally:
        for m, training in modes:
            m.training = training
    return Summary(shape, tuple(rows), sum(p.data.size for p in params), sum(p.data.nbytes for p in params),
                   sum(b.size for _, b in model.named_buffers()))


def _rule(layer: Module) -> Callable[[Any, np.ndarray], int] | None:
    """The multiply-add rule of ``layer``'s class or its nearest base class that has one."""
    return next((MULTIPLY_ADDS[k.__name__] for k in type(layer).__mro__ if k.__name__ in MULTIPLY_ADDS), None)


def _shape(shape: tuple[int, ...]) -> str:
    """``(N, 256)``: the batch dimension as N."""
    return "(" + ", ".join(["N", *map(str, shape[1:])]) + ")"
