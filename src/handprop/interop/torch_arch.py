"""A model's architecture as PyTorch code, both ways: printed as ``torch.nn.Sequential(...)`` and
read back from that text, or from what ``print(model)`` shows in PyTorch.

Read, never evaluated: the text must be calls of ``torch.nn`` modules handprop registers
(:class:`handprop.nn.registry.TorchModule`) with literal arguments (numbers, strings, True,
False, None, tuples); anything else is a ValueError saying where. The result is a handprop layer
config, so every argument is then checked by :func:`handprop.nn.registry.build`.
"""
from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..nn import Module, registry

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<label>\(\s*\w+\s*\)\s*:)                       # print(model)'s "(0): " before each child
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)
  | (?P<string>'[^'\\\n]*'|"[^"\\\n]*")
  | (?P<punct>[(),=])
""", re.VERBOSE)
_CONSTANTS = {"True": True, "False": False, "None": None}
_PREFIXES = ("torch.nn.", "nn.")
_MAX_DEPTH = 32
_INDENT = "    "


def torch_definition(model: Module) -> str:
    """``model`` as the PyTorch code that builds the same network, e.g.
    ``torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), ...)`` over several lines."""
    return _format(registry.layer_config(model), 0)


def parse_arch(text: str) -> dict[str, Any] | list:
    """The handprop layer config of a PyTorch architecture (``torch_definition``'s output or
    ``print(model)``'s), or of a handprop layer config given as JSON (``{...}`` or ``[...]``)."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError as e:
            raise UsageError(f"architecture: not valid JSON ({e})") from None
    parser = _Parser(text)
    call = parser.call(0)
    parser.expect("end")
    return _config(call, "architecture")


# -- printing --------------------------------------------------------------------------------------

def _format(config: dict[str, Any], depth: int) -> str:
    entry = _saveable()[config["type"]]
    name = f"torch.nn.{torch_module(entry).name}"
    if is_container(entry):
        if not config["layers"]:
            return f"{name}()"
        pad = _INDENT * (depth + 1)
        inner = "".join(f"{pad}{_format(child, depth + 1)},\n" for child in config["layers"])
        return f"{name}(\n{inner}{_INDENT * depth})"
    defaults = {k: p.default for k, p in inspect.signature(entry.cls).parameters.items()}
    positional, fixed = entry.torch_module.positional, entry.torch_module.fixed
    args = [_literal(config[k]) for k in positional]
    args += [f"{k}={_literal(v)}" for k, v in config.items() if k != "type" and k not in positional
             and not (k in defaults and type(defaults[k]) is type(v) and defaults[k] == v)]
    args += [f"{k}={v!r}" for k, v in fixed.items()]
    return f"{name}({', '.join(args)})"


def _literal(value: Any) -> str:
    """Python source for a config value; JSON's lists become the tuples PyTorch's shapes are."""
    return repr(tuple(value)) if isinstance(value, list) else repr(value)


# -- reading ---------------------------------------------------------------------------------------

@dataclass
class _Call:
    """``name(*args, **kwargs)`` as written; ``labels`` are print(model)'s ``(i):`` per argument."""

    name: str
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    labels: list = field(default_factory=list)


class _Parser:
    """Recursive descent over the tokens of ``text``; errors name the character position."""

    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise UsageError(f"architecture: unexpected {text[pos]!r} at character {pos}")
            if m.lastgroup != "space":
                self.tokens.append((m.lastgroup, m.group(), pos))
            pos = m.end()
        self.tokens.append(("end", "", len(text)))
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str, int]:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def expect(self, kind: str, text: str | None = None) -> str:
        got_kind, got, at = self.peek()
        if got_kind != kind or (text is not None and got != text):
            wanted = repr(text) if text is not None else "the end" if kind == "end" else f"a {kind}"
            found = repr(got) if got else "the end"
            raise UsageError(f"architecture: expected {wanted} at character {at}, found {found[:40]}")
        self.i += 1
        return got

    def call(self, depth: int) -> _Call:
        name = self.expect("name")
        call = _Call(next((name[len(p):] for p in _PREFIXES if name.startswith(p)), name))
        self.expect("punct", "(")
        while self.peek()[1] != ")":
            label = self.expect("label") if self.peek()[0] == "label" else None
            if self.peek()[0] == "name" and self.peek(1)[1] == "=":
                if label:
                    raise UsageError(f"architecture: label {label} before a keyword in {call.name}")
                key = self.expect("name")
                self.i += 1
                if key in call.kwargs:
                    raise UsageError(f"architecture: {call.name} is given {key} twice")
                call.kwargs[key] = self.value(depth)
            elif call.kwargs:
                raise UsageError(f"architecture: positional argument after keywords in {call.name}, "
                                 f"at character {self.peek()[2]}")
            else:
                call.labels.append(label and label.strip("(): \t\n"))
                call.args.append(self.value(depth))
            if self.peek()[1] != ")" and self.peek()[0] != "label":  # print(model) puts no comma
                self.expect("punct", ",")
        self.i += 1
        return call

    def value(self, depth: int) -> Any:
        kind, text, at = self.peek()
        if depth > _MAX_DEPTH:
            raise UsageError(f"architecture: nested deeper than {_MAX_DEPTH} levels")
        if kind == "name" and text not in _CONSTANTS:
            return self.call(depth + 1)
        if kind not in ("name", "number", "string") and text != "(":
            raise UsageError(f"architecture: expected a value at character {at}, found {text[:40] or 'the end'!r}")
        self.i += 1
        if kind == "name":
            return _CONSTANTS[text]
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "string":
            return text[1:-1]
        items = []  # a tuple, as print(model) shows kernel_size=(3, 3)
        while self.peek()[1] != ")":
            items.append(self.value(depth + 1))
            if self.peek()[1] != ")":
                self.expect("punct", ",")
        self.i += 1
        return tuple(items)


def _config(call: _Call, where: str) -> dict[str, Any]:
    """The handprop layer config ``call`` means (its arguments checked later, by registry.build)."""
    known = {t.torch_module.name: t for t in _saveable().values() if t.torch_module is not None}
    if call.name not in known:
        raise UsageError(f"{where}: torch.nn.{call.name} has no handprop equivalent registered; "
                         f"known: {', '.join(known)}")
    entry = known[call.name]
    spec = entry.torch_module
    where = f"{where} ({call.name})"
    if is_container(entry):
        if call.kwargs:
            raise UsageError(f"{where}: takes layers only, got {', '.join(call.kwargs)}=")
        for i, (label, child) in enumerate(zip(call.labels, call.args)):
            if label not in (None, str(i)):
                raise UsageError(f"{where}: child ({label}) is named; only numbered children (0), (1), ... "
                                 "match a state dict handprop reads")
            if not isinstance(child, _Call):
                raise UsageError(f"{where}: argument {i} is {child!r}, not a layer")
        return {"type": entry.name, "layers": [_config(c, f"{where} layer {i}") for i, c in enumerate(call.args)]}
    if any(call.labels):
        raise UsageError(f"{where}: (i): labels number the children of a Sequential only")
    if len(call.args) > len(spec.positional):
        raise UsageError(f"{where}: takes at most {len(spec.positional)} positional arguments "
                         f"({', '.join(spec.positional) or 'none'}), got {len(call.args)}")
    config: dict[str, Any] = {"type": entry.name, **dict(zip(spec.positional, call.args))}
    for key, value in call.kwargs.items():
        if key in config:
            raise UsageError(f"{where}: {key} is given positionally and by keyword")
        if key in spec.fixed and value != spec.fixed[key]:
            raise UsageError(f"{where}: {key} must be {spec.fixed[key]!r} (as handprop computes it), "
                             f"got {value!r}")
        if key not in spec.ignored and key not in spec.fixed:
            config[key] = value
    for key, value in config.items():
        if isinstance(value, _Call):
            raise UsageError(f"{where}: {key} is a module call, expected a value")
    return config


def torch_module(entry: registry.LayerType) -> registry.TorchModule:
    """``entry``'s PyTorch description, or a ValueError saying it has none."""
    if entry.torch_module is None:
        raise UsageError(f"{entry.name} has no PyTorch equivalent registered")
    return entry.torch_module


def _saveable() -> dict[str, registry.LayerType]:
    """The layer types a model file (and so an architecture) may hold, by handprop name."""
    return {t.name: t for t in registry.layer_types() if t.args is not None and issubclass(t.cls, Module)}


def is_container(entry: registry.LayerType) -> bool:
    """Whether the type holds child layers (PyTorch numbers them, as nn.Sequential does)."""
    return any(arg.kind == "layers" for arg in entry.args or ())
