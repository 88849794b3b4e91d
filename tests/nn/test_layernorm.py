"""LayerNorm: PyTorch's outputs and gradients on random shapes, per-sample statistics, files, errors.

The registered cases go through the four-way trust matrix (tests/autograd/test_trust_matrix.py).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_helpers import rel_error
from handprop import nn
from handprop.nn import registry
from handprop.serialize import build_model


def _layer(normalized_shape, seed=0, **kwargs):
    """A float64 LayerNorm with random affine weights (ones and zeros would hide a missing weight)."""
    layer = nn.LayerNorm(normalized_shape, dtype=np.float64, **kwargs)
    if layer.elementwise_affine:
        rng = np.random.default_rng(seed)
        layer.weight.data[...] = rng.uniform(0.5, 2, layer.weight.shape)
        layer.bias.data[...] = rng.standard_normal(layer.bias.shape)
    return layer


@settings(max_examples=30, deadline=None)
@given(lead=st.lists(st.integers(1, 4), min_size=0, max_size=2),
       normalized=st.lists(st.integers(1, 5), min_size=1, max_size=2), affine=st.booleans(),
       eps=st.sampled_from([1e-5, 1e-2]), seed=st.integers(0, 2**31))
def test_forward_and_gradients_match_torch(torch, lead, normalized, affine, eps, seed):
    layer = _layer(tuple(normalized), seed, eps=eps, elementwise_affine=affine)
    rng = np.random.default_rng(seed)
    shape = (*lead, *normalized)
    x, g = rng.standard_normal(shape) * 3 + 1, rng.standard_normal(shape)
    out = layer(x)
    grad_x = layer.backward(g)

    tx = torch.tensor(x, requires_grad=True)
    params = [torch.tensor(p.data, requires_grad=True) for p in layer.parameters()]
    tout = torch.nn.functional.layer_norm(tx, tuple(normalized), *params, eps=eps)
    tout.backward(torch.tensor(g))
    assert rel_error(out, tout.detach().numpy()) <= 1e-12
    for name, mine, theirs in zip(["input", "weight", "bias"], [grad_x, *(p.grad for p in layer.parameters())],
                                  [tx.grad, *(t.grad for t in params)]):
        # atol: with one normalised value xhat is 0 exactly, where torch's gradients are round-off
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-6, atol=1e-12, err_msg=name)


def test_each_sample_is_normalised_over_the_trailing_axes_only():
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 5)) * np.arange(1, 5)[:, None, None, None]
    out = nn.LayerNorm((3, 5), eps=1e-12, elementwise_affine=False)(x)
    np.testing.assert_allclose(out.mean(axis=(-2, -1)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(-2, -1)), 1, rtol=1e-9)
    np.testing.assert_allclose(nn.LayerNorm(5, eps=1e-12, elementwise_affine=False)(x).var(axis=-1), 1, rtol=1e-9)


def test_eval_gives_the_same_output_and_keeps_nothing():
    layer = _layer(6)
    x = np.random.default_rng(1).standard_normal((3, 6))
    train_out = layer(x)
    assert "_cache" in vars(layer)
    out = layer.eval()(x)
    np.testing.assert_array_equal(out, train_out)
    assert "_cache" not in vars(layer)
    with pytest.raises(RuntimeError, match="after a forward in eval mode"):
        layer.backward(np.ones_like(out))


def test_float32_by_default():
    layer = nn.LayerNorm(4)
    out = layer(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32))
    assert out.dtype == layer.backward(np.ones_like(out)).dtype == layer.weight.grad.dtype == np.float32


def test_state_dict_matches_torch_and_loads_its_weights(torch):
    twin = torch.nn.LayerNorm((2, 3), dtype=torch.float64)
    with torch.no_grad():
        twin.weight.uniform_(0.5, 2), twin.bias.normal_()
    layer = nn.LayerNorm((2, 3), dtype=np.float64)
    assert list(layer.state_dict()) == list(twin.state_dict()) == ["weight", "bias"]
    layer.load_state_dict({k: v.numpy() for k, v in twin.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    np.testing.assert_allclose(layer(x), twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)


def test_model_files_record_the_shape_as_a_list_and_rebuild_it():
    layer = nn.LayerNorm((3, 4), eps=1e-3, elementwise_affine=False)
    config = registry.layer_config(layer)
    assert config == {"type": "LayerNorm", "normalized_shape": [3, 4], "eps": 1e-3, "elementwise_affine": False}
    rebuilt = build_model([config])[0]
    assert rebuilt.normalized_shape == (3, 4) and repr(rebuilt) == "LayerNorm((3, 4), eps=0.001, elementwise_affine=False)"
    assert build_model([{"type": "LayerNorm", "normalized_shape": 5}])[0].normalized_shape == (5,)


@pytest.mark.parametrize("value", [0, [], [3, 0], [2.5], "4", [True], None])
def test_model_files_with_a_bad_shape_are_refused(value):
    with pytest.raises(ValueError, match=r"model spec \(Sequential\) layer 0 \(LayerNorm\): normalized_shape must be a positive "
                                         r"integer or a non-empty list of them"):
        build_model([{"type": "LayerNorm", "normalized_shape": value}])


@pytest.mark.parametrize("layer,x,message", [
    (nn.LayerNorm(5), np.zeros((2, 4), np.float32), r"^LayerNorm\(5\) expected input \(\.\.\., 5\), got \(2, 4\)$"),
    (nn.LayerNorm((2, 3)), np.zeros((4, 3, 2), np.float32), r"expected input \(\.\.\., 2, 3\), got \(4, 3, 2\)"),
    (nn.LayerNorm((2, 3)), np.zeros(3, np.float32), r"got \(3,\)"),
    (nn.LayerNorm(3), np.zeros((2, 3)), r"expected float32 input, got float64"),
    (nn.LayerNorm(3, elementwise_affine=False), np.zeros((2, 3), np.int64), "expected floating-point input, got int64"),
])
def test_bad_inputs_are_refused(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer(x)


def test_bad_grad_shape_is_refused():
    layer = nn.LayerNorm(3)
    layer(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"backward expected grad_output of shape \(2, 3\), got \(3,\)"):
        layer.backward(np.zeros(3, np.float32))


@pytest.mark.parametrize("kwargs,message", [
    ({"normalized_shape": 0}, "normalized_shape must be a positive integer or a non-empty list of them, got 0"),
    ({"normalized_shape": ()}, "normalized_shape must be"),
    ({"normalized_shape": (2, -1)}, "normalized_shape must be"),
    ({"normalized_shape": True}, "normalized_shape must be"),
    ({"normalized_shape": 4, "eps": 0.0}, "eps must be a positive number, got 0.0"),
    ({"normalized_shape": 4, "eps": float("inf")}, "eps must be a positive number"),
    ({"normalized_shape": 4, "elementwise_affine": "no"}, "elementwise_affine must be True or False"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=f"^LayerNorm: {message}"):
        nn.LayerNorm(**kwargs)
