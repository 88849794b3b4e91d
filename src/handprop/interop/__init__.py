"""Weights that travel: PyTorch state dicts and architectures, read and written with NumPy alone.

``handprop export MODEL --to torch OUT.safetensors`` and ``handprop import`` are built on these.
"""
from .pytorch import from_torch_state, to_torch_state
from .torch_arch import parse_arch, torch_definition

__all__ = ["to_torch_state", "from_torch_state", "torch_definition", "parse_arch"]
