"""Gradient buckets: every gradient a view into a flat buffer, and backward writing into it."""
from __future__ import annotations

import numpy as np
import pytest

from handprop import nn
from handprop.distributed import GradientBuckets


def mlp(dtype=np.float32) -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 5, rng=0, dtype=dtype), nn.ReLU(), nn.Linear(5, 3, rng=1, dtype=dtype))


def backward(model: nn.Sequential, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    dtype = model[0].weight.dtype
    out = model(rng.standard_normal((4, 6)).astype(dtype))
    model.backward(rng.standard_normal(out.shape).astype(dtype), input_grad=False)


def test_gradients_become_views_of_the_buckets_and_keep_their_values():
    model = mlp()
    backward(model)
    expected = [p.grad.copy() for p in model.parameters()]
    buckets = GradientBuckets(model.parameters())
    assert len(buckets.buffers) == 1 and buckets.nbytes == 4 * (6 * 5 + 5 + 5 * 3 + 3)
    for p, g in zip(model.parameters(), expected):
        assert np.shares_memory(p.grad, buckets.buffers[0])
        np.testing.assert_array_equal(p.grad, g)
    np.testing.assert_array_equal(buckets.buffers[0], np.concatenate([g.ravel() for g in expected]))


def test_backward_and_zero_grad_work_in_the_buckets():
    model, reference = mlp(), mlp()
    buckets = GradientBuckets(model.parameters())
    for m in (model, reference):
        backward(m, 1)
        backward(m, 2)  # gradients accumulate
    np.testing.assert_array_equal(buckets.buffers[0],
                                  np.concatenate([p.grad.ravel() for p in reference.parameters()]))
    model.zero_grad()
    assert not buckets.buffers[0].any()
    assert all(np.shares_memory(p.grad, buckets.buffers[0]) for p in model.parameters())


def test_the_capacity_splits_buckets_and_dtypes_never_mix():
    model = mlp()
    small = GradientBuckets(model.parameters(), bucket_bytes=4 * 35)  # W0 + b0 fill the first bucket
    assert [b.size for b in small.buffers] == [35, 18]
    tiny = GradientBuckets(model.parameters(), bucket_bytes=4)  # every parameter alone
    assert [b.size for b in tiny.buffers] == [30, 5, 15, 3]
    mixed = [nn.Parameter(np.zeros(3, np.float32)), nn.Parameter(np.zeros(2, np.float64)),
             nn.Parameter(np.zeros(4, np.float64))]
    buckets = GradientBuckets(mixed)
    assert [(b.dtype, b.size) for b in buckets.buffers] == [(np.float32, 3), (np.float64, 6)]


def test_a_replaced_gradient_buffer_is_noticed_and_rebound():
    model = mlp()
    buckets = GradientBuckets(model.parameters())
    model.to(np.float64)  # new gradient buffers of another dtype
    buckets.rebind()
    assert buckets.buffers[0].dtype == np.float64
    assert all(np.shares_memory(p.grad, buckets.buffers[0]) for p in model.parameters())
    backward(model)
    assert buckets.buffers[0].any()


@pytest.mark.parametrize("bucket_bytes", [0, -1, 1.5])
def test_bad_arguments_are_errors(bucket_bytes):
    with pytest.raises(ValueError, match="bucket_bytes must be a positive integer"):
        GradientBuckets(mlp().parameters(), bucket_bytes)
    with pytest.raises(ValueError, match="empty parameter list"):
        GradientBuckets([])
