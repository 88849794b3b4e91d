"""Forward and backward hooks: order, the arrays they see, removal, and no trace when unused."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from handprop import nn
from handprop.nn.hooks import HookGroup, named_layers


def _mlp():
    return nn.Sequential(nn.Linear(4, 6, dtype=np.float64, rng=0), nn.ReLU(),
                         nn.Linear(6, 3, dtype=np.float64, rng=1))


def _x():
    return np.random.default_rng(2).standard_normal((5, 4))


def _record(log, name):
    return lambda module, a, b: log.append((name, module, a, b))


def test_forward_hooks_fire_in_order_with_the_inputs_and_outputs():
    model, x, log = _mlp(), _x(), []
    for i, layer in enumerate(model):
        layer.register_forward_hook(_record(log, i))
    model.register_forward_hook(_record(log, "model"))
    out = model(x)

    assert [name for name, *_ in log] == [0, 1, 2, "model"]
    h1 = x @ model[0].weight.data + model[0].bias.data
    a1 = np.maximum(h1, 0)
    expected = [(x, h1), (h1, a1), (a1, out), (x, out)]
    for (name, module, inputs, output), (want_in, want_out) in zip(log, expected):
        assert module is (model if name == "model" else model[name])
        assert isinstance(inputs, tuple) and len(inputs) == 1
        np.testing.assert_allclose(inputs[0], want_in, rtol=1e-12)
        np.testing.assert_allclose(output, want_out, rtol=1e-12)
    assert log[1][2][0] is log[0][3] and log[2][2][0] is log[1][3]  # the very arrays passed on


def test_backward_hooks_fire_in_reverse_with_the_gradients():
    model, x, log = _mlp(), _x(), []
    for i, layer in enumerate(model):
        layer.register_backward_hook(_record(log, i))
    model.register_backward_hook(_record(log, "model"))
    out = model(x)
    g = np.random.default_rng(3).standard_normal(out.shape)
    gx = model.backward(g, input_grad=True)

    assert [name for name, *_ in log] == [2, 1, 0, "model"]
    g_a1 = g @ model[2].weight.data.T
    a1 = np.maximum(x @ model[0].weight.data + model[0].bias.data, 0)
    g_h1 = g_a1 * (a1 > 0)
    expected = [(g_a1, g), (g_h1, g_a1), (gx, g_h1), (gx, g)]
    for (_, _, grad_input, grad_output), (want_in, want_out) in zip(log, expected):
        assert isinstance(grad_input, tuple) and isinstance(grad_output, tuple)
        np.testing.assert_allclose(grad_input[0], want_in, rtol=1e-12)
        np.testing.assert_allclose(grad_output[0], want_out, rtol=1e-12)
    np.testing.assert_allclose(gx, g_h1 @ model[0].weight.data.T, rtol=1e-12)


def test_backward_hook_sees_none_when_no_input_gradient_is_wanted():
    model, log = _mlp(), []
    model[0].register_backward_hook(_record(log, 0))
    model.backward(np.ones(model(_x()).shape), input_grad=False)
    assert log[0][2] == (None,)


def test_hooks_of_one_module_fire_in_registration_order():
    layer, log = nn.ReLU(), []
    for name in "abc":
        layer.register_forward_hook(_record(log, name))
    layer(np.ones(3))
    assert [name for name, *_ in log] == ["a", "b", "c"]


def test_hooks_do_not_change_results_or_gradients():
    x, g = _x(), np.ones((5, 3))
    plain, hooked = _mlp(), _mlp()
    for layer in hooked.modules():
        layer.register_forward_hook(lambda *a: None)
        layer.register_backward_hook(lambda *a: None)
    np.testing.assert_array_equal(plain(x), hooked(x))
    np.testing.assert_array_equal(plain.backward(g), hooked.backward(g))
    for p, q in zip(plain.parameters(), hooked.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)
    assert [n for n, _ in plain.named_parameters()] == [n for n, _ in hooked.named_parameters()]
    assert plain.state_dict().keys() == hooked.state_dict().keys()


def test_remove_stops_the_hook_and_the_last_removal_leaves_no_trace():
    layer, log = nn.ReLU(), []
    first = layer.register_forward_hook(_record(log, "first"))
    second = layer.register_forward_hook(_record(log, "second"))
    first.remove()
    first.remove()  # twice: nothing happens
    layer(np.ones(2))
    assert [name for name, *_ in log] == ["second"]
    second.remove()
    layer(np.ones(2))
    assert len(log) == 1
    assert set(vars(layer)) == {"_zeros", "_cache"}  # no wrapper, no hook table left
    assert type(layer).forward is layer.forward.__func__  # the class's method runs untouched


def test_handles_are_context_managers_and_groups_remove_everything():
    model, log = _mlp(), []
    with model[1].register_backward_hook(_record(log, "relu")):
        model.backward(np.ones(model(_x()).shape))
    model.backward(np.ones(model(_x()).shape))
    assert len(log) == 1 and "backward" not in vars(model[1])

    with HookGroup(layer.register_forward_hook(_record(log, i)) for i, layer in enumerate(model)):
        model(_x())
    model(_x())
    assert [name for name, *_ in log] == ["relu", 0, 1, 2]
    assert all("forward" not in vars(layer) for layer in model)


def test_a_deep_copy_hooks_the_copy_not_the_original():
    model, log = _mlp(), []
    model[0].register_forward_hook(_record(log, "hook"))
    twin = copy.deepcopy(model)
    twin[0].weight.data[...] = 0
    twin[0].bias.data[...] = 0
    assert np.all(twin(_x()) == twin(np.zeros((5, 4))))  # the copy's own (zeroed) weights
    assert log[-1][1] is twin[0]


def test_a_hook_that_returns_a_value_is_an_error():
    layer = nn.Tanh()
    layer.register_forward_hook(lambda m, i, o: o * 2)
    with pytest.raises(ValueError, match="forward hook .* returned ndarray.*must return None"):
        layer(np.ones(3))
    layer = nn.Tanh()
    layer.register_backward_hook(lambda m, gi, go: gi)
    layer(np.ones(3))
    with pytest.raises(ValueError, match="backward hook .* returned tuple"):
        layer.backward(np.ones(3))


def test_bad_registrations_are_clear_errors():
    with pytest.raises(ValueError, match="ReLU.register_forward_hook: expected a callable"):
        nn.ReLU().register_forward_hook("print")
    layer = nn.ReLU()
    layer.forward = lambda x: x
    with pytest.raises(ValueError, match="has its own forward attribute"):
        layer.register_forward_hook(lambda *a: None)


def test_named_layers_lists_each_module_once_in_tree_order():
    shared = nn.Linear(3, 3)
    inner = nn.Sequential(nn.ReLU(), shared)
    model = nn.Sequential(shared, inner, nn.Tanh())
    assert list(named_layers(model).items()) == [(shared, "layers.0"), (inner[0], "layers.1.layers.0"),
                                                 (model[2], "layers.2")]
    assert list(named_layers(model, leaves_only=False).values()) == [
        "Sequential", "layers.0", "layers.1", "layers.1.layers.0", "layers.2"]
    assert named_layers(shared) == {shared: "Linear"}
