"""The Tensor operations by family, each forward beside its backward; importing this package
makes them Tensor methods and operators (``x.relu()``, ``x @ w``, ``x.sum(axis=0)``...).

* ``arithmetic``: ``+ - * / ** @``, negation, comparisons, in-place updates
* ``unary``: exp, log, sqrt, abs, erf and the activations relu, leaky_relu, tanh, sigmoid, clamp
* ``reduction``: sum, mean, var, max, min, logsumexp, log_softmax, softmax
* ``movement``: reshape, flatten, squeeze, unsqueeze, transpose, T, indexing, pad, unfold, astype
"""
from __future__ import annotations

from ..tensor import Tensor
from . import arithmetic, movement, reduction, unary



def _attach(*families) -> None:
    """Make each function of each family's ``METHODS`` table the Tensor attribute of that name."""
    for family in families:
        for name, method in family.METHODS.items():
            setattr(Tensor, name, method)


_attach(arithmetic, unary, reduction, movement)
