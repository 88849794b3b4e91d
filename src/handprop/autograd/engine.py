"""The graph engine: when an op records a node, how a node is made, and the backward walk.

A node is a Tensor with ``_parents`` (its inputs), ``_backward`` (a closure mapping the output
gradient to one gradient per parent, from the buffers the forward saved), ``_op`` (its name)
and ``_versions`` (the parents' in-place counters when it was made). :func:`backward` visits
the nodes once each, outputs before inputs, summing the gradients that reach a node along
every path before passing them on.

This module does not import ``tensor.py`` (``Tensor.backward`` calls into it): a node is built
as an instance of its first input's class, which is always a Tensor.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from . import grad_mode as _gm

if TYPE_CHECKING:
    from .tensor import Tensor

_Backward = Callable[[np.ndarray], Sequence["np.ndarray | None"]]

_FREED = ("Trying to backward through the graph a second time (or directly access saved tensors "
          "after they have already been freed). Saved intermediate values of the graph are freed "
          "when you call .backward(). Specify retain_graph=True if you need to backward through "
          "the graph a second time.")


# -- node creation ------------------------------------------------------------------------------
def _tracking(parents: tuple[Tensor, ...]) -> bool:
    """True when an op on ``parents`` must record a node: grad mode is on and one requires grad."""
    if not _gm._enabled:
        return False
    for p in parents:
        if p.requires_grad:
            return True
    return False


def _result(data, parents: tuple[Tensor, ...], backward: _Backward, op: str) -> Tensor:
    """The output of an operation: a graph node when recording, else a constant."""
    t = type(parents[0])._wrap(data)
    if _tracking(parents):
        t.requires_grad = True
        t._parents = parents
        t._backward = backward
        t._op = op
        t._versions = tuple(p._version for p in parents)
    return t


def _unary(x: Tensor, out, backward: Callable[[np.ndarray], np.ndarray], op: str) -> Tensor:
    """The output of a one-input op whose ``backward`` returns the input's gradient."""
    if not (x.requires_grad and _gm._enabled):
        return type(x)._wrap(out)
    return _result(out, (x,), lambda g: (backward(g),), op)


# -- the backward walk ----------------------------------------------------------------------------
def topological_order(root: Tensor) -> list[Tensor]:
    """Nodes requiring grad reachable from ``root``, inputs before outputs (iterative DFS)."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for p in node._parents:
            if p.requires_grad and id(p) not in visited:
                stack.append((p, False))
    return order


def backward(root: Tensor, seed: np.ndarray, retain_graph: bool) -> None:
    """Propagate ``seed`` (dLoss/droot) through the graph; add dLoss/dleaf into each leaf's ``.grad``.

    A node's gradient is complete once every node after it has run, so each closure runs once,
    on the sum of its output's gradients. Without ``retain_graph`` the closures are dropped as
    they run, freeing the buffers they saved.
    """
    grads: dict[Tensor, np.ndarray] = {root: seed}
    for node in reversed(topological_order(root)):
        g = grads.pop(node, None)
        if g is None:
            continue
        if node._op is None:  # a leaf that requires grad
            node._accumulate(g)
            continue
        if node._retain:
            node._accumulate(g)
        fn = node._backward
        if fn is None:
            raise RuntimeError(_FREED)
        parents = node._parents
        if node._version or node._versions != tuple(p._version for p in parents):
            raise RuntimeError(f"a Tensor needed to compute the gradient of {node._op} was "
                               f"modified by an in-place operation after it was used")
        if not retain_graph:
            node._backward = None  # frees the saved buffers held by the closure
        for p, pg in zip(parents, fn(g)):
            if pg is None or not p.requires_grad:
                continue
            if type(pg) is not np.ndarray or pg.dtype != p.data.dtype:
                pg = np.asarray(pg, dtype=p.data.dtype)
            if pg.shape != p.data.shape:  # a bug in an op's backward, never the user's
                raise RuntimeError(f"{node._op} produced a gradient of shape {pg.shape} "
                                   f"for an input of shape {p.data.shape}")
            prev = grads.get(p)
            grads[p] = pg if prev is None else prev + pg  # never in place: pg may be shared
