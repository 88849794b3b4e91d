"""BatchNorm1d/2d: PyTorch's outputs, gradients, running statistics and state_dict; train/eval; errors.

The trust matrix (tests/autograd/test_trust_matrix.py) checks the registered cases four ways;
here: random shapes against PyTorch, k training steps of running statistics, eval mode, files.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_helpers import rel_error
from handprop import nn
from handprop.nn import registry
from handprop.serialize import load_model, save_model

LAYOUTS = {"1d (N, C)": (nn.BatchNorm1d, ()), "1d (N, C, L)": (nn.BatchNorm1d, (7,)),
           "2d": (nn.BatchNorm2d, (5, 4))}


def _pair(torch, cls, num_features, seed=0, **kwargs):
    """A float64 handprop layer with random affine weights and its torch.nn twin holding the same."""
    layer = cls(num_features, dtype=np.float64, **kwargs)
    twin = getattr(torch.nn, cls.__name__)(num_features, dtype=torch.float64, **kwargs)
    if layer.affine:
        rng = np.random.default_rng(seed)
        layer.weight.data[...] = rng.uniform(0.5, 2, num_features)
        layer.bias.data[...] = rng.standard_normal(num_features)
        with torch.no_grad():
            twin.weight.copy_(torch.from_numpy(layer.weight.data))
            twin.bias.copy_(torch.from_numpy(layer.bias.data))
    return layer, twin


def _batch(shape, seed):
    """Inputs far from the initial running statistics (mean 0, var 1), so updates show."""
    return np.random.default_rng(seed).standard_normal(shape) * 3 + 2


# -- against PyTorch -------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(layout=st.sampled_from(sorted(LAYOUTS)), n=st.integers(2, 6), c=st.integers(1, 4),
       affine=st.booleans(), seed=st.integers(0, 2**31))
def test_forward_and_gradients_match_torch(torch, layout, n, c, affine, seed):
    cls, rest = LAYOUTS[layout]
    layer, _ = _pair(torch, cls, c, seed, affine=affine)
    rng = np.random.default_rng(seed)
    x, g = _batch((n, c, *rest), seed), rng.standard_normal((n, c, *rest))
    out = layer(x)
    grad_x = layer.backward(g)

    tx = torch.tensor(x, requires_grad=True)
    params = [torch.tensor(p.data, requires_grad=True) for p in layer.parameters()]
    tout = torch.nn.functional.batch_norm(tx, None, None, *params, training=True, eps=layer.eps)
    tout.backward(torch.tensor(g))
    assert rel_error(out, tout.detach().numpy()) <= 1e-12
    for name, mine, theirs in zip(["input", "weight", "bias"], [grad_x, *(p.grad for p in layer.parameters())],
                                  [tx.grad, *(t.grad for t in params)]):
        assert rel_error(mine, theirs.numpy()) <= 1e-6, name


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_running_statistics_equal_torch_after_five_steps_and_eval_output_too(torch, layout, momentum):
    cls, rest = LAYOUTS[layout]
    layer, twin = _pair(torch, cls, 3, momentum=momentum)
    for step in range(5):
        x = _batch((4 + step, 3, *rest), seed=step)  # batch sizes vary: the unbiased n/(n-1) varies
        np.testing.assert_allclose(layer(x), twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)
    theirs = {k: v.numpy() for k, v in twin.state_dict().items()}
    assert int(layer.num_batches_tracked) == int(theirs["num_batches_tracked"]) == 5
    np.testing.assert_allclose(layer.running_mean, theirs["running_mean"], rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, theirs["running_var"], rtol=1e-12)
    assert not np.allclose(layer.running_var, 1) and not np.allclose(layer.running_mean, 0)

    layer.eval(), twin.eval()
    x = _batch((3, 3, *rest), seed=9)
    np.testing.assert_allclose(layer(x), twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("cls", [nn.BatchNorm1d, nn.BatchNorm2d])
def test_state_dict_keys_and_values_equal_torch(torch, cls, affine):
    layer, twin = _pair(torch, cls, 4, affine=affine)
    shape = (5, 4) if cls is nn.BatchNorm1d else (5, 4, 2, 3)
    layer(_batch(shape, 0))
    twin(torch.from_numpy(_batch(shape, 0)))
    mine, theirs = layer.state_dict(), twin.state_dict()
    assert list(mine) == list(theirs)
    expected = ["weight", "bias"] * affine + ["running_mean", "running_var", "num_batches_tracked"]
    assert list(mine) == expected and [n for n, _ in layer.named_parameters()] == ["weight", "bias"][:2 * affine]
    for name in mine:
        assert mine[name].dtype == theirs[name].numpy().dtype, name
        np.testing.assert_allclose(mine[name], theirs[name].numpy(), rtol=1e-12)


def test_a_torch_state_dict_loads_and_gives_torch_eval_output(torch):
    twin = torch.nn.BatchNorm2d(3, dtype=torch.float64)
    with torch.no_grad():
        twin.weight.uniform_(0.5, 2), twin.bias.normal_()
    for seed in range(3):
        twin(torch.from_numpy(_batch((4, 3, 2, 2), seed)))
    layer = nn.BatchNorm2d(3, dtype=np.float64)
    layer.load_state_dict({k: v.numpy() for k, v in twin.state_dict().items()})
    layer.eval(), twin.eval()
    x = _batch((2, 3, 4, 4), 7)
    np.testing.assert_allclose(layer(x), twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)


# -- hand-written properties -----------------------------------------------------------------------

def test_training_output_is_normalised_per_channel():
    out = nn.BatchNorm2d(3, eps=1e-12, dtype=np.float64)(_batch((8, 3, 4, 4), 0))
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-9)


def test_float32_by_default_and_close_to_float64():
    x = _batch((6, 4, 3), 0)
    layer32, layer64 = nn.BatchNorm1d(4), nn.BatchNorm1d(4, dtype=np.float64)
    out = layer32(x.astype(np.float32))
    grad = layer32.backward(np.ones_like(out))
    assert out.dtype == grad.dtype == layer32.running_var.dtype == layer32.weight.grad.dtype == np.float32
    assert rel_error(out, layer64(x)) <= 1e-6 and rel_error(layer32.running_var, layer64.running_var) <= 1e-6


# -- train / eval ----------------------------------------------------------------------------------

def test_eval_uses_running_statistics_keeps_nothing_and_changes_nothing():
    layer = nn.BatchNorm1d(3, dtype=np.float64)
    for seed in range(3):
        layer(_batch((10, 3), seed))
    x = _batch((4, 3), 5)
    train_out = layer(x)
    layer.backward(np.ones_like(train_out))  # consume the training cache
    state = layer.state_dict()
    out = layer.eval()(x)
    expected = (x - layer.running_mean) / np.sqrt(layer.running_var + layer.eps) * layer.weight.data + layer.bias.data
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    assert not np.allclose(out, train_out), "eval must not normalise with the batch statistics"
    np.testing.assert_array_equal(layer(x[:1]), out[:1])  # per sample: a batch of one is fine in eval
    assert "_cache" not in vars(layer)
    with pytest.raises(RuntimeError, match="after a forward in eval mode"):
        layer.backward(np.ones_like(out))
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)
    layer.train()
    np.testing.assert_allclose(layer(x), train_out, rtol=1e-14)
    assert int(layer.num_batches_tracked) == 5


# -- model files -----------------------------------------------------------------------------------

def test_save_model_load_model_round_trip_restores_buffers(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.BatchNorm1d(3, momentum=None), nn.ReLU(),
                          nn.BatchNorm1d(3, eps=1e-3, affine=False))
    for seed in range(3):
        model(_batch((8, 4), seed).astype(np.float32))
    spec = registry.layer_config(model)["layers"]
    assert spec[1] == {"type": "BatchNorm1d", "num_features": 3, "eps": 1e-5, "momentum": None, "affine": True}
    save_model(tmp_path / "m.npz", model, spec)
    loaded, _, _, arrays = load_model(tmp_path / "m.npz")
    assert "model.layers.1.running_var" in arrays and arrays["model.layers.3.num_batches_tracked"].dtype == np.int64
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value, err_msg=name)
    x = _batch((5, 4), 9).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval()(x), model.eval()(x))
    assert repr(loaded[3]) == "BatchNorm1d(3, eps=0.001, affine=False)"


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer,shape,message", [
    (nn.BatchNorm2d(16), (8, 3, 28, 28), r"^BatchNorm2d\(16\) expected input \(N, 16, H, W\), got \(8, 3, 28, 28\)$"),
    (nn.BatchNorm2d(3), (8, 3, 28), r"expected input \(N, 3, H, W\), got \(8, 3, 28\)"),
    (nn.BatchNorm1d(4), (8, 3), r"^BatchNorm1d\(4\) expected input \(N, 4\) or \(N, 4, L\), got \(8, 3\)$"),
    (nn.BatchNorm1d(4), (8, 4, 2, 2), r"got \(8, 4, 2, 2\)"),
    (nn.BatchNorm1d(4), (4,), r"got \(4,\)"),
    (nn.BatchNorm1d(5), (1, 5), r"more than 1 value per channel when training, got input of shape \(1, 5\)"),
    (nn.BatchNorm1d(5), (1, 5, 1), r"more than 1 value per channel"),
    (nn.BatchNorm2d(2), (1, 2, 1, 1), r"more than 1 value per channel"),
])
def test_bad_inputs_are_refused_with_the_expected_layout(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer(np.zeros(shape, np.float32))
    assert int(layer.num_batches_tracked) == 0, "a refused batch must not touch the statistics"


def test_a_batch_of_one_is_fine_in_training_when_it_has_several_values_per_channel():
    assert nn.BatchNorm1d(2)(np.ones((1, 2, 3), np.float32)).shape == (1, 2, 3)


def test_dtype_mismatch_and_bad_grad_shape_are_refused():
    with pytest.raises(ValueError, match=r"expected float32 input, got float64 .*model.to\(np.float64\)"):
        nn.BatchNorm1d(2)(np.ones((3, 2)))
    layer = nn.BatchNorm1d(2, affine=False).to(np.float64)
    layer(_batch((3, 2), 0))  # float buffers followed .to(): float64 input is accepted
    with pytest.raises(ValueError, match=r"backward expected grad_output of shape \(3, 2\), got \(3, 1\)"):
        layer.backward(np.ones((3, 1)))


@pytest.mark.parametrize("kwargs,message", [
    ({"num_features": 0}, "num_features must be a positive integer, got 0"),
    ({"num_features": -2}, "num_features must be a positive integer"),
    ({"num_features": 2.5}, "num_features must be a positive integer"),
    ({"num_features": True}, "num_features must be a positive integer"),
    ({"num_features": 3, "eps": 0}, "eps must be a positive number, got 0"),
    ({"num_features": 3, "eps": -1e-5}, "eps must be a positive number"),
    ({"num_features": 3, "eps": float("nan")}, "eps must be a positive number"),
    ({"num_features": 3, "momentum": 1.5}, r"momentum must be a number in \[0, 1\] or None"),
    ({"num_features": 3, "momentum": "fast"}, "momentum must be a number"),
    ({"num_features": 3, "affine": 1}, "affine must be True or False"),
])
@pytest.mark.parametrize("cls", [nn.BatchNorm1d, nn.BatchNorm2d])
def test_bad_arguments_are_refused(cls, kwargs, message):
    with pytest.raises(ValueError, match=f"^{cls.__name__}: {message}"):
        cls(**kwargs)


def test_repr_shows_the_size_and_what_differs_from_the_defaults():
    assert repr(nn.BatchNorm2d(16)) == "BatchNorm2d(16)"
    assert repr(nn.BatchNorm1d(4, eps=1e-3, momentum=None, affine=False)) == \
        "BatchNorm1d(4, eps=0.001, momentum=None, affine=False)"


def test_batchnorm2d_reads_and_returns_channels_last_memory_with_the_same_values():
    """A Conv2d's output is channels-last memory: BatchNorm2d takes it without a copy and returns
    the same layout (so the ReLU after it runs contiguous); a channels-first input gives the same values."""
    x = np.random.default_rng(0).standard_normal((4, 6, 5, 3)).astype(np.float32)
    last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    outs = []
    for inp in (x, last):
        layer = nn.BatchNorm2d(6)
        out = layer(inp)
        assert out.transpose(0, 2, 3, 1).flags.c_contiguous
        grad = layer.backward(np.ones_like(out))
        assert grad.transpose(0, 2, 3, 1).flags.c_contiguous
        outs.append((out, grad))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
