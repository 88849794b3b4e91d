"""Buffers: non-trainable state in state_dict (running statistics, counters), never a Parameter."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from handprop import nn


class Tracker(nn.Module):
    """A layer with one parameter, a float buffer and an integer counter."""

    def __init__(self):
        self.scale = nn.Parameter(np.ones(3))
        self.register_buffer("running", np.zeros(3))
        self.register_buffer("count", np.zeros((), np.int64))

    def forward(self, x):
        self.running += x.mean(axis=0)
        self.count += 1
        return x * self.scale.data


def _model():
    return nn.Sequential(nn.Linear(4, 3, dtype=np.float64, rng=0), Tracker(), nn.Sequential(Tracker()))


def test_buffers_are_in_state_dict_but_not_parameters():
    model = _model()
    assert [n for n, _ in model.named_parameters()] == ["layers.0.weight", "layers.0.bias", "layers.1.scale",
                                                       "layers.2.layers.0.scale"]
    assert [n for n, _ in model.named_buffers()] == ["layers.1.running", "layers.1.count",
                                                     "layers.2.layers.0.running", "layers.2.layers.0.count"]
    assert list(model.state_dict()) == [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    assert all(p is not b for p in model.parameters() for _, b in model.named_buffers())


def test_named_buffers_prefix_and_shared_modules_once():
    t = Tracker()
    assert [n for n, _ in t.named_buffers("enc.")] == ["enc.running", "enc.count"]
    model = nn.Sequential(t, nn.ReLU(), t)
    assert [n for n, _ in model.named_buffers()] == ["layers.0.running", "layers.0.count"]
    assert list(model.state_dict()) == ["layers.0.scale", "layers.0.running", "layers.0.count"]


def test_state_dict_copies_buffers_and_reads_a_reassigned_attribute():
    t = Tracker()
    t(np.ones((2, 3)))
    state = t.state_dict()
    assert state["running"] is not t.running and state["count"] == 1
    state["running"][...] = 7
    assert not (t.running == 7).any()
    t.running = np.full(3, 5.0)  # reassigned, still the buffer of that name
    np.testing.assert_array_equal(t.state_dict()["running"], [5, 5, 5])


def test_load_state_dict_restores_buffers_in_place_with_their_dtype():
    src, dst = _model(), _model()
    src(np.random.default_rng(0).standard_normal((5, 4)))
    running, count = dst[1].running, dst[1].count
    dst.load_state_dict({k: v.astype(np.float32) if k.endswith("running") else v for k, v in src.state_dict().items()})
    assert dst[1].running is running and dst[1].count is count, "loaded in place, references stay valid"
    assert dst[1].running.dtype == np.float64 and dst[1].count.dtype == np.int64
    np.testing.assert_allclose(dst[1].running, src[1].running, rtol=1e-6)
    assert int(dst[2][0].count) == 1


@pytest.mark.parametrize("change,message", [
    (lambda s: s.pop("layers.1.count"), r"missing \['layers.1.count'\]"),
    (lambda s: s.update({"layers.1.extra": np.zeros(1)}), r"unexpected \['layers.1.extra'\]"),
    (lambda s: s.update({"layers.2.layers.0.running": np.zeros(4)}), r"layers.2.layers.0.running expected shape \(3,\)"),
])
def test_failed_load_changes_neither_parameters_nor_buffers(change, message):
    model, other = _model(), _model()
    other(np.ones((2, 4)))
    before = model.state_dict()
    bad = other.state_dict()
    change(bad)
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(bad)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_to_casts_float_buffers_but_not_integer_counters():
    t = Tracker().to(np.float32)
    assert t.scale.dtype == np.float32 and t.running.dtype == np.float32 and t.count.dtype == np.int64
    t.to(np.float64)
    assert t.running.dtype == np.float64 and t.count.dtype == np.int64


def test_deepcopy_gives_independent_buffers():
    t = Tracker()
    clone = copy.deepcopy(t)
    t(np.ones((1, 3)))
    assert clone.running.sum() == 0 and clone.count == 0 and t.count == 1


@pytest.mark.parametrize("name,value,message", [
    ("running", np.zeros(1), "expected a new attribute name, got 'running'"),
    ("scale", np.zeros(1), "attribute 'scale' exists already"),
    ("forward", np.zeros(1), "attribute 'forward' exists already"),
    ("not a name", np.zeros(1), "expected a new attribute name"),
    ("stats", [0.0, 1.0], "stats must be a numpy array, got list"),
])
def test_register_buffer_refuses_bad_names_and_values(name, value, message):
    with pytest.raises(ValueError, match=message):
        Tracker().register_buffer(name, value)
