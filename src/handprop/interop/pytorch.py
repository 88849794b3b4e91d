"""PyTorch state dicts from handprop models and back, with NumPy alone (torch is never imported).

``to_torch_state(model)`` names and lays out the weights as ``torch_definition(model)`` expects
them (``0.weight`` of shape (out, in) for a Sequential's first Linear, ...), so
``torch_model.load_state_dict(...)`` accepts them as they are; ``from_torch_state`` goes back,
checking names, shapes and dtypes against the architecture before anything is loaded.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import UsageError
from ..nn import Module, registry
from ..serialize import load_weights
from ..serialize import build_model, group
from .torch_arch import is_container, parse_arch, torch_module


def to_torch_state(model: Module) -> dict[str, np.ndarray]:
    """``model``'s state dict under PyTorch's names, in PyTorch's layouts."""
    return _convert(model, model.state_dict(), "to_torch")


def from_torch_state(state: Mapping[str, np.ndarray], arch: str | dict[str, Any] | list,
                     where: str = "PyTorch state dict") -> Module:
    """A handprop model built from ``arch`` (PyTorch code or ``print(model)`` text, see
    :func:`handprop.interop.parse_arch`, or a handprop layer config) holding the weights of the
    PyTorch ``state``; any mismatch is a ValueError naming ``where``."""
    model = build_model(parse_arch(arch) if isinstance(arch, str) else arch)
    expected = to_torch_state(model)
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise UsageError(f"{where}: does not match the architecture: missing {_few(missing)}, "
                         f"unexpected {_few(unexpected)}")
    for name, want in expected.items():
        got = np.asarray(state[name])
        if got.shape != want.shape or got.dtype.kind != want.dtype.kind:
            raise UsageError(f"{where}: {name} is {got.dtype} {got.shape}; the architecture expects "
                             f"{'a float' if want.dtype.kind == 'f' else want.dtype} array of shape {want.shape}")
    load_weights(model, _convert(model, state, "from_torch"), where)
    return model


def _convert(layer: Module, state: Mapping[str, np.ndarray], direction: str) -> dict[str, np.ndarray]:
    """``layer``'s state between handprop's names and layouts and PyTorch's (``direction`` is the
    TorchModule hook to apply); children of a container are numbered, as in nn.Sequential."""
    entry = registry.lookup(layer)
    if not is_container(entry):
        convert = getattr(torch_module(entry), direction)
        return convert(layer, dict(state)) if convert else dict(state)
    out = {}
    for i, (name, child) in enumerate(layer.named_children()):
        source, target = (name, str(i)) if direction == "to_torch" else (str(i), name)
        out.update({f"{target}.{k}": v for k, v in _convert(child, group(state, source), direction).items()})
    return out


def _few(names: list[str], limit: int = 5) -> str:
    """The first ``limit`` names (a whole foreign state dict would make a page-long error line)."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"
