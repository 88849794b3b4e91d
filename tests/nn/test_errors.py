"""Every usage error of the layers and losses: the exception type and the exact message."""
from __future__ import annotations

import re

import numpy as np
import pytest

from handprop import nn
from handprop.nn import functional as F


def raises(error, message):
    """pytest.raises matching the whole message literally (not as a regex, not a substring)."""
    return pytest.raises(error, match=f"^{re.escape(message)}$")


BEFORE_FORWARD = "backward() called before forward() (or twice for one forward, or after a forward in eval mode)"


# -- Linear ------------------------------------------------------------------------------------

def test_linear_wrong_input_width():
    with raises(ValueError, "Linear(784 -> 50) expected input (..., 784), got (64, 100)"):
        nn.Linear(784, 50)(np.zeros((64, 100), np.float32))


def test_linear_scalar_input():
    with raises(ValueError, "Linear(2 -> 3) expected input (..., 2), got ()"):
        nn.Linear(2, 3)(np.zeros((), np.float32))


def test_linear_dtype_mismatch():
    with raises(ValueError, "Linear(784 -> 50) expected float32 input, got float64 "
                            "(convert with x.astype(np.float32) or model.to(np.float64))"):
        nn.Linear(784, 50)(np.zeros((64, 784)))
    with raises(ValueError, "Linear(4 -> 2) expected float64 input, got float32 "
                            "(convert with x.astype(np.float64) or model.to(np.float32))"):
        nn.Linear(4, 2, dtype=np.float64)(np.zeros((3, 4), np.float32))


def test_linear_dtype_mismatch_inside_sequential_names_the_layer():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"^Linear\(4 -> 3\) expected float32 input, got uint8"):
        model(np.zeros((2, 4), np.uint8))


@pytest.mark.parametrize("args,message", [
    ((0, 5), "Linear: in_features must be a positive integer, got 0"),
    ((5, -1), "Linear: out_features must be a positive integer, got -1"),
    ((2.0, 5), "Linear: in_features must be a positive integer, got 2.0"),
])
def test_linear_bad_sizes(args, message):
    with raises(ValueError, message):
        nn.Linear(*args)


def test_linear_unknown_init():
    with raises(ValueError, "Linear: unknown init 'he'; expected one of default, kaiming_uniform, "
                            "kaiming_normal, xavier_uniform, xavier_normal or a callable"):
        nn.Linear(3, 2, init="he")


def test_linear_backward_wrong_grad_shape_changes_no_gradient():
    lin = nn.Linear(3, 2)
    lin(np.ones((4, 3), np.float32))
    with raises(ValueError, "Linear(3 -> 2).backward expected grad_output of shape (4, 2), got (2, 4)"):
        lin.backward(np.ones((2, 4), np.float32), input_grad=False)  # same size: a reshape would pass
    assert not lin.weight.grad.any() and not lin.bias.grad.any()


# -- backward before forward -------------------------------------------------------------------

@pytest.mark.parametrize("module,grad", [
    (nn.Linear(784, 50), np.zeros((1, 50), np.float32)),
    (nn.ReLU(), np.zeros(3)), (nn.LeakyReLU(0.1), np.zeros(3)), (nn.GeneralReLU(0.1), np.zeros(3)),
    (nn.Tanh(), np.zeros(3)), (nn.Sigmoid(), np.zeros(3)), (nn.LogSoftmax(), np.zeros((1, 3))),
], ids=repr)
def test_layer_backward_before_forward(module, grad):
    with raises(RuntimeError, f"{module!r}: {BEFORE_FORWARD}"):
        module.backward(grad)


def test_sequential_backward_before_forward_names_the_last_layer():
    with raises(RuntimeError, f"Linear(4 -> 2): {BEFORE_FORWARD}"):
        nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).backward(np.zeros((1, 2), np.float32))


@pytest.mark.parametrize("crit", [nn.MSELoss(), nn.CrossEntropyLoss("sum"), nn.NLLLoss()], ids=repr)
def test_loss_backward_before_forward_and_twice(crit):
    with raises(RuntimeError, f"{crit!r}: {BEFORE_FORWARD}"):
        crit.backward()
    output, target = np.log(np.full((2, 3), 1 / 3)), np.array([0, 2])
    crit(output, target if not isinstance(crit, nn.MSELoss) else np.zeros((2, 3)))
    crit.backward()
    with raises(RuntimeError, f"{crit!r}: {BEFORE_FORWARD}"):
        crit.backward()


def test_base_module_forward_backward_not_implemented():
    with raises(NotImplementedError, "Module.forward"):
        nn.Module()(np.zeros(1))
    with raises(NotImplementedError, "Module.backward"):
        nn.Module().backward(np.zeros(1))


# -- activations -------------------------------------------------------------------------------

@pytest.mark.parametrize("module", [nn.ReLU(), nn.LeakyReLU(0.1), nn.GeneralReLU(0.1, 0.4, 6.0),
                                    nn.Tanh(), nn.Sigmoid()], ids=repr)
def test_activation_backward_wrong_grad_shape(module):
    module(np.ones((2, 3)))
    with raises(ValueError, f"{module!r}.backward expected grad_output of shape (2, 3), got (3, 2)"):
        module.backward(np.ones((3, 2)))


def test_log_softmax_backward_wrong_grad_shape():
    m = nn.LogSoftmax()
    m(np.ones((2, 3)))
    with raises(ValueError, "LogSoftmax.backward expected grad_output of shape (2, 3), got (2, 1)"):
        m.backward(np.ones((2, 1)))


def test_sequential_rejects_non_modules():
    with raises(TypeError, "Sequential: argument 1 is function, not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


# -- losses ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [nn.MSELoss, nn.CrossEntropyLoss, nn.NLLLoss])
@pytest.mark.parametrize("reduction", ["none", "Mean", None])
def test_bad_reduction(cls, reduction):
    with raises(ValueError, f"{cls.__name__}: reduction must be one of ('mean', 'sum'), got {reduction!r}"):
        cls(reduction)


@pytest.mark.parametrize("output_shape,target_shape,message", [
    ((5, 2), (5,), "MSELoss expected target of shape (5, 2), got (5,)"),
    ((5,), (5, 1), "MSELoss expected target of shape (5,), got (5, 1)"),
    ((5, 1), (4,), "MSELoss expected target of shape (5, 1) (or (5,) for an (N, 1) output), got (4,)"),
    ((2, 3), (3, 2), "MSELoss expected target of shape (2, 3), got (3, 2)"),
    ((3, 4), (4,), "MSELoss expected target of shape (3, 4), got (4,)"),  # would broadcast in NumPy
    ((), (3,), "MSELoss expected target of shape (), got (3,)"),
])
def test_mse_shape_mismatch(output_shape, target_shape, message):
    with raises(ValueError, message):
        nn.MSELoss()(np.zeros(output_shape), np.zeros(target_shape))


def test_mse_n1_against_n_is_squeezed_not_broadcast():
    crit = nn.MSELoss("sum")
    value = crit(np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 5.0]))
    assert value == 4.0  # broadcasting (3,1)-(3,) would give a 3x3 difference and 1+1+4+...=19
    np.testing.assert_array_equal(crit.backward(), [[0.0], [0.0], [-4.0]])


@pytest.mark.parametrize("cls", [nn.CrossEntropyLoss, nn.NLLLoss])
@pytest.mark.parametrize("output,target,message", [
    (np.zeros((4, 3)), np.array([0, 1, 2]), "{name} expected target of shape (4,) for output (4, 3), got (3,)"),
    (np.zeros((2, 3)), np.array([[0], [1]]), "{name} expected target of shape (2,) for output (2, 3), got (2, 1)"),
    (np.zeros(3), np.array([0]), "{name} expected output of shape (N, C), got (3,)"),
    (np.zeros((2, 3, 4)), np.array([0, 1]), "{name} expected output of shape (N, C), got (2, 3, 4)"),
    (np.zeros((2, 3)), np.array([0, 3]), "{name} expected class targets in [0, 3), got 3"),
    (np.zeros((2, 3)), np.array([-1, 0]), "{name} expected class targets in [0, 3), got -1"),
    (np.zeros((3, 10)), np.array([2, 10, 11]), "{name} expected class targets in [0, 10), got 10"),
    (np.zeros((2, 3)), np.array([0.0, 1.0]), "{name} expected integer class targets, got dtype float64"),
    (np.zeros((2, 3)), np.array([0.0, 1.0], np.float32), "{name} expected integer class targets, got dtype float32"),
    (np.zeros((2, 3)), np.array([True, False]), "{name} expected integer class targets, got dtype bool"),
    (np.zeros((2, 3)), np.array([0, 1], np.uint8), None),  # unsigned labels are labels
    (np.zeros((2, 3), np.int64), np.array([0, 1]), "{name} expected a floating-point output array, got int64"),
])
def test_classification_loss_errors(cls, output, target, message):
    if message is None:
        assert np.isfinite(cls()(output, target))
        return
    with raises(ValueError, message.format(name=cls.__name__)):
        cls()(output, target)


def test_loss_output_must_be_an_array():
    with raises(ValueError, "MSELoss expected a floating-point output array, got list"):
        nn.MSELoss()([1.0, 2.0], np.zeros(2))


# -- state -------------------------------------------------------------------------------------

def _state(**changes):
    state = {"layers.0.weight": np.zeros((3, 4)), "layers.0.bias": np.zeros(4),
             "layers.2.weight": np.zeros((4, 2)), "layers.2.bias": np.zeros(2)}
    state.update(changes)
    return {k: v for k, v in state.items() if v is not None}


@pytest.mark.parametrize("state,message", [
    (_state(**{"layers.2.bias": None}), "Sequential.load_state_dict: missing ['layers.2.bias'], unexpected []"),
    (_state(extra=np.zeros(1)), "Sequential.load_state_dict: missing [], unexpected ['extra']"),
    (_state(**{"layers.0.weight": None, "0.weight": np.zeros((3, 4))}),
     "Sequential.load_state_dict: missing ['layers.0.weight'], unexpected ['0.weight']"),
    (_state(**{"layers.0.weight": np.zeros((4, 3))}),
     "Sequential.load_state_dict: layers.0.weight expected shape (3, 4), got (4, 3)"),
    (_state(**{"layers.2.bias": np.zeros((1, 2))}),
     "Sequential.load_state_dict: layers.2.bias expected shape (2,), got (1, 2)"),
])
def test_load_state_dict_wrong_names_or_shapes(state, message):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model.load_state_dict(_state())  # the right one loads
    with raises(ValueError, message):
        model.load_state_dict(state)


# -- the functional forms validate like the modules (the review found them broadcasting) ----------
def test_functional_mse_never_broadcasts():
    with raises(ValueError, "mse expected target of shape (4, 2), got (4,)"):
        F.mse(np.zeros((4, 2)), np.zeros(4))
    assert F.mse(np.arange(4.0)[:, None], np.arange(4.0)) == 0.0  # the notebooks' (N, 1) vs (N,)


@pytest.mark.parametrize("fn", ["nll", "cross_entropy"])
def test_functional_classification_losses_check_targets(fn):
    with raises(ValueError, f"{fn} expected class targets in [0, 3), got -1"):
        getattr(F, fn)(np.zeros((2, 3)), np.array([-1, 0]))
    with raises(ValueError, f"{fn} expected integer class targets, got dtype float64"):
        getattr(F, fn)(np.zeros((2, 3)), np.array([0.0, 1.0]))


def test_empty_batch_mean_losses_are_nan_not_a_crash():
    for crit in (nn.NLLLoss(), nn.CrossEntropyLoss()):
        assert np.isnan(crit(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)))
        assert crit.backward().shape == (0, 3)
