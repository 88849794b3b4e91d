"""The library-wide random generator: one seedable source for every draw handprop makes."""
from __future__ import annotations

import numpy as np

# Created on first use: ``numpy.random`` (and the ``secrets`` module it pulls in) costs ~15 ms
# of ``import handprop`` otherwise.
_generator: np.random.Generator | None = None


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed handprop's default generator (like ``torch.manual_seed``) and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_rng() -> np.random.Generator:
    """The generator used when a function is called without ``rng=``."""
    global _generator
    if _generator is None:
        _generator = np.random.default_rng()
    return _generator


def resolve_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Turn ``rng=`` (a Generator, a seed or None) into a Generator."""
    if rng is None:
        return default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")
