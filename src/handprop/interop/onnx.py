"""ONNX export: a handprop model as an ONNX graph that onnxruntime (or any ONNX runtime) runs.

Each layer type writes its own nodes, in eval form, through its registration's
:class:`~handprop.nn.registry.OnnxExport`; :class:`Graph` is the small builder they write into.
It records nodes and initialisers as plain Python and becomes an ``onnx.ModelProto`` in
:func:`to_onnx`, the only place the ``onnx`` package (the ``onnx`` extra) is imported.

The graph takes ``input`` of shape (batch, *one sample), the batch axis free, and returns
``logits``; it holds float32 weights, the dtype ONNX runtimes run (a float64 model is exported
in float32). Opset 17 (LayerNormalization's first), IR version 8, so runtimes from 2022 on read
it; GELU is therefore written with Erf (ONNX's Gelu op arrived in opset 20).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import UsageError
from ..extras import require
from ..nn import Module, registry
from ..serialize import atomic_write

if TYPE_CHECKING:  # for annotations only
    from ..data.transforms import Normalize

OPSET, IR_VERSION = 17, 8
INPUT, OUTPUT, BATCH = "input", "logits", "batch"
#: ``metadata_props`` key of the input normalisation the model was trained with (JSON mean/std).
NORMALIZE_KEY = "handprop.normalize"


@dataclass
class _Node:
    op: str
    inputs: list[str]
    output: str
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)


class Graph:
    """The builder a layer's ``emit(layer, graph, x)`` writes into.

    :meth:`op` adds one node and returns its output's name; its inputs are value names, arrays
    (stored as initialisers: float32, or int64 for integer arrays, named after the layer's
    parameter or buffer when they are one, e.g. ``layers.0.weight``) or Python numbers (scalar
    float32 constants). :meth:`layer` writes a child layer; :meth:`rank` is a value's rank.
    """

    def __init__(self, input_rank: int):
        self.nodes: list[_Node] = []
        self.initializers: dict[str, np.ndarray] = {}
        self._ranks = {INPUT: input_rank}
        self._scope = ""  # the dotted name of the layer being written, as in its state dict
        self._array_names: dict[int, str] = {}  # id(array) -> its state-dict name
        self._taken: set[str] = {INPUT, OUTPUT}

    def rank(self, value: str) -> int:
        """The number of axes of ``value`` (batch included)."""
        return self._ranks[value]

    def op(self, op_type: str, *inputs: str | np.ndarray | float, rank: int | None = None, **attrs: Any) -> str:
        """Add an ``op_type`` node on ``inputs`` with ONNX attributes ``attrs``; its output's rank
        is ``rank``, by default that of the first input."""
        names = [self._value(v, op_type) for v in inputs]
        out = self._unique(f"{self._scope}{op_type}")
        self.nodes.append(_Node(op_type, names, out, out, attrs))
        self._ranks[out] = self._ranks[names[0]] if rank is None else rank
        return out

    def layer(self, layer: Module, x: str, name: str = "") -> str:
        """Write ``layer`` applied to ``x`` (a child called ``name`` of the layer being written)."""
        emit = registry.onnx_export(layer).emit
        outer = self._scope, self._array_names
        self._scope = f"{self._scope}{name}." if name else self._scope
        self._array_names = {id(p.data): self._scope + n for n, p in layer.named_parameters()}
        self._array_names.update({id(a): self._scope + n for n, a in layer.named_buffers()})
        try:
            return emit(layer, self, x)
        finally:
            self._scope, self._array_names = outer

    def _value(self, value: str | np.ndarray | float, op_type: str) -> str:
        if isinstance(value, str):
            if value not in self._ranks:
                raise UsageError(f"ONNX export: {op_type} in {self._scope or 'the model'} reads {value!r}, "
                                 "which no node wrote")
            return value
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise UsageError(f"ONNX export: {op_type} in {self._scope or 'the model'} got a {array.dtype} "
                             "constant; expected numbers")
        name = self._array_names.get(id(value)) if isinstance(value, np.ndarray) else None
        if name is None or name in self.initializers:
            name = self._unique(f"{self._scope}{op_type}.const")
        self.initializers[name] = array.astype(np.float32 if array.dtype.kind == "f" else np.int64)
        self._taken.add(name)
        self._ranks[name] = array.ndim
        return name

    def _unique(self, base: str) -> str:
        name, i = base, 0
        while name in self._taken:
            i += 1
            name = f"{base}_{i}"
        self._taken.add(name)
        return name

    def finish(self, result: str) -> None:
        """Make ``result`` the graph's output, named :data:`OUTPUT`."""
        producer = next((node for node in self.nodes if node.output == result), None)
        if producer is None:  # the model is the identity, or returns a constant
            self.nodes.append(_Node("Identity", [result], OUTPUT, self._unique("Identity")))
            return
        producer.output = OUTPUT
        for node in self.nodes:
            node.inputs = [OUTPUT if name == result else name for name in node.inputs]


def to_onnx(model: Module, input_shape: Sequence[int | str] | None = None, normalize: Normalize | None = None,
            doc: str = "") -> Any:
    """``model`` (in its eval form) as a checked ``onnx.ModelProto``.

    ``input_shape`` is one sample's shape (ints, or names for free axes); by default the one
    its first layer declares (:func:`handprop.nn.registry.input_shape`). ``normalize`` is
    recorded in the metadata (``handprop.normalize``), for whoever feeds the graph.
    """
    onnx = require("onnx", "onnx", "ONNX export")
    from onnx import TensorProto, helper, numpy_helper

    from .. import __version__

    shape = tuple(registry.input_shape(model) if input_shape is None else input_shape)
    _check_takes(model, shape)
    graph = Graph(1 + len(shape))
    graph.finish(graph.layer(model, INPUT))
    nodes = [helper.make_node(n.op, n.inputs, [n.output], name=n.name, **n.attrs) for n in graph.nodes]
    proto = helper.make_model(
        helper.make_graph(nodes, type(model).__name__,
                          [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [BATCH, *shape])],
                          [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(a, name) for name, a in graph.initializers.items()]),
        opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
        producer_name="handprop", producer_version=__version__, doc_string=doc)
    if normalize is not None:
        helper.set_model_props(proto, {NORMALIZE_KEY: json.dumps({"mean": normalize.mean, "std": normalize.std})})
    try:
        proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise UsageError(f"ONNX export of {type(model).__name__}: the graph does not check: {e}") from None
    return proto


def save_onnx(proto: Any, path: str | os.PathLike) -> Path:
    """Write an ``onnx.ModelProto`` to ``path``, atomically."""
    path = Path(path)
    with atomic_write(path) as f:
        f.write(proto.SerializeToString())
    return path


def _check_takes(model: Module, shape: tuple[int | str, ...]) -> None:
    """A ValueError (the layer's own) when ``model`` does not take samples of ``shape``: the
    graph would be written, and fail in the runtime. Free axes are not checked."""
    if not all(isinstance(n, str) or isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0
               for n in shape):
        raise UsageError(f"ONNX export: input_shape must hold positive ints or axis names, got {shape}")
    if any(isinstance(n, str) for n in shape):
        return
    from ..train.metrics import predict

    dtype = next((p.dtype for p in model.parameters()), np.dtype(np.float32))
    predict(model, np.zeros((1, *shape), dtype))
