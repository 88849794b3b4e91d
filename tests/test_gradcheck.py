"""gradcheck: passes on correct layers, and fails loudly (GradcheckError + table) on wrong ones."""
from __future__ import annotations

import re

import numpy as np
import pytest

import handprop
from handprop import GradcheckError, assert_close, assert_near_zero, gradcheck, nn
from handprop.gradcheck import GradcheckReport, numerical_grad


class WrongTanh(nn.Tanh):
    """tanh with a classic mistake: the derivative uses the input, not the output."""

    def forward(self, x):
        self._save_x = x
        return super().forward(x)

    def backward(self, grad_output, input_grad=True):
        self._saved()
        return grad_output * (1 - self._save_x ** 2)


class WrongWeightGradLinear(nn.Linear):
    """Correct input gradient, but the weight gradient is missing the transpose's partner (x^T g / 2)."""

    def backward(self, grad_output, input_grad=True):
        (x,) = self._saved()
        self.weight.grad += 0.5 * x.T @ grad_output
        self.bias.grad += grad_output.sum(0)
        return grad_output @ self.weight.data.T


class WrongMSE(nn.MSELoss):
    """Forgets the factor 2 of d(diff^2)."""

    def backward(self):
        return super().backward() / 2


def test_correct_layer_passes_with_a_report():
    report = gradcheck(nn.Linear(3, 2, rng=0), np.random.default_rng(0).standard_normal((4, 3)))
    assert isinstance(report, GradcheckReport) and report.passed
    assert report.target == "Linear(3 -> 2)"
    assert all(r.max_abs_error < 1e-7 for r in report.rows)


def test_wrong_activation_raises_gradcheck_error_with_table():
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(GradcheckError) as info:
        gradcheck(WrongTanh(), x)
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0] == "gradient check failed (atol=1e-05, rtol=0.0001)"
    assert lines[1] == "gradcheck WrongTanh()"
    assert re.match(r"^\s+tensor\s+shape\s+max abs err\s+max rel err\s+ok$", lines[2])
    assert re.match(r"^\s+input\s+\(3, 4\)\s+\S+e[+-]\d+\s+\S+e[+-]\d+\s+NO$", lines[3])
    assert isinstance(info.value, AssertionError), "a GradcheckError fails a test like an assert"


def test_wrong_parameter_gradient_is_pinpointed():
    layer = WrongWeightGradLinear(3, 2, rng=0)
    report = gradcheck(layer, np.random.default_rng(1).standard_normal((5, 3)), raise_on_failure=False)
    assert not report.passed
    verdicts = {r.name: r.passed for r in report.rows}
    assert verdicts == {"input": True, "weight": False, "bias": True}
    table = str(report)
    assert re.search(r"weight\s+\(3, 2\).*NO$", table, re.M) and re.search(r"bias\s+\(2,\).*yes$", table, re.M)
    with pytest.raises(GradcheckError, match=r"weight\s+\(3, 2\)"):
        gradcheck(layer, np.random.default_rng(1).standard_normal((5, 3)))


def test_wrong_loss_backward_fails():
    output, target = np.random.default_rng(0).standard_normal((4, 2)), np.zeros((4, 2))
    assert gradcheck(nn.MSELoss(), output, target).passed
    with pytest.raises(GradcheckError, match=r"gradcheck WrongMSE\(reduction='mean'\)"):
        gradcheck(WrongMSE(), output, target)


def test_gradcheck_leaves_the_callers_module_alone():
    lin = nn.Linear(3, 2, rng=0)
    before = lin.state_dict()
    gradcheck(lin, np.ones((2, 3)))
    assert lin.weight.dtype == np.float32 and not lin.weight.grad.any()
    for name, value in lin.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_gradcheck_works_on_a_module_in_eval_mode():
    model = nn.Sequential(nn.Linear(3, 3, rng=0), nn.Tanh()).eval()
    assert gradcheck(model, np.ones((2, 3))).passed
    assert not model.training


def test_gradcheck_rejects_non_callables():
    with pytest.raises(TypeError, match="^gradcheck expects a Module, a Loss or a callable, got int$"):
        gradcheck(3, np.ones(2))


def test_numerical_grad_of_a_known_function():
    a = np.array([1.0, -2.0, 3.0])
    g = numerical_grad(lambda: float(np.sum(a ** 3)), a)
    np.testing.assert_allclose(g, 3 * a ** 2, rtol=1e-8)
    np.testing.assert_array_equal(a, [1.0, -2.0, 3.0])  # restored after perturbing


def test_assert_close():
    assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]))
    with pytest.raises(AssertionError, match=r"^value: max abs error 1\.000e-01 at index \(1,\) "
                                             r"\(actual 2\.1, expected 2\.0; rtol=1e-05, atol=1e-08\)$"):
        assert_close(np.array([1.0, 2.1]), np.array([1.0, 2.0]))
    with pytest.raises(AssertionError, match=r"^w: shape \(2,\) != expected \(1, 2\)$"):
        assert_close(np.zeros(2), np.zeros((1, 2)), name="w")


def test_assert_near_zero():
    assert_near_zero(np.array([1e-4, -5e-4]))
    with pytest.raises(AssertionError, match=r"^mean: expected \|x\| < 0\.001, got max \|x\| = 2\.000e-03$"):
        assert_near_zero(-2e-3, name="mean")


def test_top_level_exports():
    assert handprop.gradcheck is gradcheck and issubclass(handprop.GradcheckError, AssertionError)
