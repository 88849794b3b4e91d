"""Diamonds: one node's gradient reaches two parents whose paths meet again.

The walk must add the gradients of every path into a node before running that node's
backward once; these graphs fail if a path is dropped, counted twice, or walked twice.
"""
from __future__ import annotations

import numpy as np
import pytest

from handprop.autograd import Tensor


def leaves(*shapes, seed=0) -> list[Tensor]:
    rng = np.random.default_rng(seed)
    return [Tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


@pytest.mark.parametrize("retain_graph", [False, True])
def test_square_of_a_sum_gives_twice_the_sum_to_both_inputs(retain_graph):
    a, b = leaves((3, 4), (3, 4))
    s = a + b  # s feeds both sides of the product, which meet again in it
    (s * s).sum().backward(retain_graph=retain_graph)
    np.testing.assert_allclose(a.grad, 2 * (a.data + b.data), rtol=1e-15)
    np.testing.assert_allclose(b.grad, 2 * (a.data + b.data), rtol=1e-15)


def test_diamond_with_a_broadcast_input():
    a, b = leaves((3, 4), (4,))
    s = a + b
    (s * s).sum().backward()
    np.testing.assert_allclose(a.grad, 2 * (a.data + b.data), rtol=1e-15)
    np.testing.assert_allclose(b.grad, (2 * (a.data + b.data)).sum(axis=0), rtol=1e-14)


def test_longer_diamond_matches_the_hand_derived_formula():
    a, b = leaves((2, 5), (2, 5), seed=1)
    c = a * b
    (c + c * a).sum().backward()  # d = sum(ab + a^2 b)
    np.testing.assert_allclose(a.grad, b.data + 2 * a.data * b.data, rtol=1e-14)
    np.testing.assert_allclose(b.grad, a.data + a.data ** 2, rtol=1e-14)


def test_interior_node_receives_the_sum_of_both_branches():
    a, b = leaves((4,), (4,), seed=2)
    c = (a * b).retain_grad()
    (c.exp() + c * c).sum().backward()
    np.testing.assert_allclose(c.grad, np.exp(c.data) + 2 * c.data, rtol=1e-15)
    np.testing.assert_allclose(a.grad, c.grad * b.data, rtol=1e-15)


def test_stacked_diamonds_run_each_node_once():
    """20 diamonds in a row make 2^20 paths; the gradient is still exactly one walk's worth."""
    (a,) = leaves((3,), seed=3)
    x = a
    for _ in range(20):
        x = x * 0.5 + x * 0.5
    x.sum().backward()  # without retain_graph a node reached twice would raise: its closure is freed
    np.testing.assert_allclose(a.grad, np.ones(3), rtol=1e-12)


def test_diamonds_match_torch(torch, close):
    def f(a, b):
        c = a * b
        return (c + c * a).sum() + ((a + b) * (a + b)).sum()

    ha, hb = leaves((3, 2), (3, 2), seed=4)
    ta, tb = (torch.tensor(t.data, requires_grad=True) for t in (ha, hb))
    hy, ty = f(ha, hb), f(ta, tb)
    hy.backward()
    ty.backward()
    close(hy.data, ty.detach().numpy(), 1e-14, "value")
    close(ha.grad, ta.grad.numpy(), 1e-14, "grad of a")
    close(hb.grad, tb.grad.numpy(), 1e-14, "grad of b")
