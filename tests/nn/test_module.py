"""Module / Sequential / Parameter: the contract (tree walking, state, modes, accumulation)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import handprop
from engine_helpers import check_against_torch, rel_error, torch_mirror
from handprop import nn


def _mlp(dtype=np.float64, seed=0):
    return nn.Sequential(nn.Linear(4, 8, dtype=dtype, rng=seed), nn.ReLU(),
                         nn.Linear(8, 3, dtype=dtype, rng=seed + 1))


class TwoBranch(nn.Module):
    """A user-defined module: a Parameter, a child, a list of children, a non-parameter array."""

    def __init__(self):
        self.scale = nn.Parameter(np.ones(3))
        self.body = nn.Linear(4, 3, dtype=np.float64, rng=0)
        self.heads = [nn.Linear(3, 2, dtype=np.float64, rng=1), nn.Tanh()]
        self.buffer = np.zeros(3)  # not a Parameter: must never be listed or trained

    def forward(self, x):
        b = self.body(x)
        self._save(b)
        return self.heads[1](self.heads[0](b * self.scale.data))

    def backward(self, g, input_grad=True):
        (b,) = self._saved()
        gh = self.heads[0].backward(self.heads[1].backward(g))
        self.scale.grad += (gh * b).sum(0)
        return self.body.backward(gh * self.scale.data, input_grad)


# -- against PyTorch ----------------------------------------------------------------------------

_LAYERS = [lambda i, o, s: nn.Linear(i, o, dtype=np.float64, rng=s)]
_ACTS = [nn.ReLU, nn.Tanh, nn.Sigmoid, lambda: nn.LeakyReLU(0.1), lambda: nn.GeneralReLU(0.1, 0.4, 6.0)]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), widths=st.lists(st.integers(1, 9), min_size=2, max_size=5),
       acts=st.lists(st.integers(0, len(_ACTS) - 1), min_size=4, max_size=4),
       batch=st.integers(1, 8), log_softmax=st.booleans())
def test_sequential_matches_torch(torch, seed, widths, acts, batch, log_softmax):
    layers = []
    for k, (i, o) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Linear(i, o, dtype=np.float64, rng=seed + k), _ACTS[acts[k]]()]
    if log_softmax:
        layers.append(nn.LogSoftmax())
    x = np.random.default_rng(seed).standard_normal((batch, widths[0]))
    check_against_torch(torch, nn.Sequential(*layers), x, seed)


def test_sequential_gradcheck():
    model = nn.Sequential(nn.Linear(4, 6, rng=0), nn.Tanh(), nn.Linear(6, 5, rng=1), nn.Sigmoid(),
                          nn.Linear(5, 3, rng=2), nn.LogSoftmax())
    report = handprop.gradcheck(model, np.random.default_rng(0).standard_normal((3, 4)))
    assert report.passed
    assert [r.name for r in report.rows] == ["input", "layers.0.weight", "layers.0.bias", "layers.2.weight",
                                             "layers.2.bias", "layers.4.weight", "layers.4.bias"]


def test_user_module_gradcheck_walks_children_and_lists():
    report = handprop.gradcheck(TwoBranch(), np.random.default_rng(0).standard_normal((5, 4)))
    assert [r.name for r in report.rows] == ["input", "scale", "body.weight", "body.bias",
                                             "heads.0.weight", "heads.0.bias"]


# -- parameters ---------------------------------------------------------------------------------

def test_parameters_in_attribute_order_with_dotted_names():
    model = _mlp()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    params = model.parameters()
    assert [p.shape for p in params] == [(4, 8), (8,), (8, 3), (3,)]
    assert params[0] is model[0].weight and params[3] is model[2].bias
    m = TwoBranch()
    assert [n for n, _ in m.named_parameters()] == ["scale", "body.weight", "body.bias",
                                                    "heads.0.weight", "heads.0.bias"]
    assert all(p is not m.buffer for p in m.parameters())


def test_named_parameters_prefix():
    assert [n for n, _ in nn.Linear(2, 2).named_parameters("enc.")] == ["enc.weight", "enc.bias"]


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin, nn.Sequential(lin))
    assert len(model.parameters()) == 2
    assert [n for n, _ in model.named_parameters()] == ["layers.0.weight", "layers.0.bias"]
    m = nn.Module()
    m.a = nn.Parameter(np.zeros(2))
    m.b = m.a
    assert m.parameters() == [m.a]


def test_parameter_holds_data_and_zero_grad_of_same_shape_and_dtype():
    p = nn.Parameter(np.arange(6, dtype=np.float32).reshape(2, 3).T)  # non-contiguous input
    assert p.data.flags.c_contiguous and p.shape == (3, 2) and p.dtype == np.float32
    assert p.grad.shape == (3, 2) and p.grad.dtype == np.float32 and not p.grad.any()
    p.grad += 1
    p.zero_grad()
    assert not p.grad.any()
    assert repr(p) == "Parameter(shape=(3, 2), dtype=float32)"


def test_modules_and_children_walk_the_tree():
    inner = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    model = nn.Sequential(nn.Linear(2, 2), inner)
    assert [type(m).__name__ for m in model.modules()] == ["Sequential", "Linear", "Sequential", "Linear", "Tanh"]
    assert [n for n, _ in model.named_children()] == ["layers.0", "layers.1"]
    assert len(model) == 2 and model[1] is inner and list(model)[0] is model[0]


# -- gradients ---------------------------------------------------------------------------------

def test_zero_grad_clears_every_gradient():
    model = _mlp()
    model(np.ones((2, 4)))
    model.backward(np.ones((2, 3)))
    assert any(p.grad.any() for p in model.parameters())
    buffers = [p.grad for p in model.parameters()]
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())
    assert all(p.grad is b for p, b in zip(model.parameters(), buffers)), "zero_grad must reuse the buffers"


def test_gradients_accumulate_across_backward_calls(torch):
    model = _mlp()
    rng = np.random.default_rng(0)
    x1, x2, g1, g2 = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), \
        rng.standard_normal((5, 3)), rng.standard_normal((3, 3))
    tm = torch_mirror(torch, model)
    for x, g in ((x1, g1), (x2, g2)):
        model(x)
        model.backward(g)
        tm(torch.from_numpy(x)).backward(torch.from_numpy(g))
    tgrads = [p.grad.numpy() for p in tm.parameters()]
    for p, tg in zip(model.parameters(), tgrads):
        assert rel_error(p.grad, tg.T if p.grad.ndim == 2 else tg) <= 1e-12
    # and the sum equals two separate computations added
    single = []
    for x, g in ((x1, g1), (x2, g2)):
        m = copy.deepcopy(model)
        m.zero_grad()
        m(x)
        m.backward(g)
        single.append([p.grad.copy() for p in m.parameters()])
    for p, a, b in zip(model.parameters(), *single):
        np.testing.assert_allclose(p.grad, a + b, rtol=1e-12)


def test_input_grad_false_returns_none_and_fills_parameter_grads():
    model = _mlp()
    x, g = np.random.default_rng(0).standard_normal((5, 4)), np.random.default_rng(1).standard_normal((5, 3))
    ref = copy.deepcopy(model)
    ref(x)
    assert ref.backward(g, input_grad=True).shape == x.shape
    model(x)
    assert model.backward(g, input_grad=False) is None
    for p, q in zip(model.parameters(), ref.parameters()):
        assert p.grad.any()
        np.testing.assert_array_equal(p.grad, q.grad)


def _spy_on_linear_backward(monkeypatch) -> list:
    """(layer, input_grad) of every Linear.backward call, in call order."""
    calls, linear_backward = [], nn.Linear.backward

    def spy(self, grad_output, input_grad=True):
        calls.append((self, input_grad))
        return linear_backward(self, grad_output, input_grad)
    monkeypatch.setattr(nn.Linear, "backward", spy)
    return calls


def test_the_readme_loop_skips_the_first_layers_input_gradient(monkeypatch):
    """``model.backward(loss_fn.backward())`` as the README writes it: no dL/dx, so the first
    Linear skips ``grad @ W.T`` (a product as large as its forward); the others must pass theirs."""
    calls = _spy_on_linear_backward(monkeypatch)
    model = nn.Sequential(nn.Linear(784, 50, rng=0), nn.ReLU(), nn.Linear(50, 10, rng=1))
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    loss_fn(model(rng.standard_normal((64, 784), dtype=np.float32)), rng.integers(0, 10, 64))
    assert model.backward(loss_fn.backward()) is None
    assert calls == [(model[2], True), (model[0], False)]
    assert all(p.grad.any() for p in model.parameters())


def test_a_nested_sequential_is_asked_for_its_input_gradient_unless_it_comes_first(monkeypatch):
    calls = _spy_on_linear_backward(monkeypatch)
    first, middle, last = (nn.Linear(3, 3, dtype=np.float64, rng=k) for k in range(3))
    model = nn.Sequential(nn.Sequential(first), nn.Sequential(middle, nn.Tanh()), last)
    model(np.ones((2, 3)))
    assert model.backward(np.ones((2, 3))) is None
    assert calls == [(last, True), (middle, True), (first, False)]


def test_backward_consumes_the_cache():
    lin = nn.Linear(2, 2)
    lin(np.ones((1, 2), np.float32))
    assert "_cache" in vars(lin)
    lin.backward(np.ones((1, 2), np.float32))
    assert "_cache" not in vars(lin)
    with pytest.raises(RuntimeError, match=r"Linear\(2 -> 2\): backward\(\) called before forward\(\)"):
        lin.backward(np.ones((1, 2), np.float32))


# -- modes -------------------------------------------------------------------------------------

def test_eval_forward_keeps_no_cache_and_train_restores_it():
    model = _mlp()
    x = np.ones((2, 4))
    y_train = model(x)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert all("_cache" not in vars(m) for m in model.modules()), "eval() must drop stale caches"
    np.testing.assert_array_equal(model(x), y_train)
    assert all("_cache" not in vars(m) for m in model.modules())
    with pytest.raises(RuntimeError, match="after a forward in eval mode"):
        model.backward(np.ones((2, 3)))
    assert model.train() is model and all(m.training for m in model.modules())
    model(x)
    assert model.backward(np.ones((2, 3)), input_grad=True).shape == (2, 4)
    model.train(False)
    assert not model[0].training


def test_eval_applies_to_losses_too():
    crit = nn.CrossEntropyLoss().eval()
    crit(np.zeros((2, 3)), np.array([0, 1]))
    assert "_cache" not in vars(crit)


# -- state -------------------------------------------------------------------------------------

def test_state_dict_round_trip():
    a, b = _mlp(seed=0), _mlp(seed=10)
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert not np.allclose(a(x), b(x))
    state = a.state_dict()
    assert list(state) == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    assert all(state[n] is not p.data for n, p in a.named_parameters()), "state_dict must copy"
    weight_before = b[0].weight.data
    b.load_state_dict(state)
    np.testing.assert_array_equal(a(x), b(x))
    assert b[0].weight.data is weight_before, "load_state_dict copies in place"
    state["layers.0.weight"][...] = 0  # mutating the dict does not touch either model
    assert a[0].weight.data.any() and b[0].weight.data.any()


def test_load_state_dict_casts_to_the_parameter_dtype():
    m32 = _mlp(np.float32)
    m32.load_state_dict(_mlp(np.float64, seed=3).state_dict())
    assert m32[0].weight.dtype == np.float32
    np.testing.assert_allclose(m32[0].weight.data, _mlp(np.float64, seed=3)[0].weight.data, rtol=1e-6)


def test_failed_load_state_dict_changes_nothing():
    model = _mlp()
    before = model.state_dict()
    bad = _mlp(seed=5).state_dict()
    bad["layers.2.bias"] = np.zeros(4)  # the last one is wrong: nothing may be half-loaded
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict(bad)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_to_float64_casts_parameters_and_keeps_gradients():
    model = _mlp(np.float32)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    y32 = model(x)
    model.backward(np.ones((2, 3), np.float32))
    grads = [p.grad.copy() for p in model.parameters()]
    assert model.to(np.float64) is model
    for p, g in zip(model.parameters(), grads):
        assert p.data.dtype == np.float64 and p.grad.dtype == np.float64
        np.testing.assert_array_equal(p.grad, g)
    y64 = model(x.astype(np.float64))
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, y32, rtol=1e-5, atol=1e-6)
    model.to(np.float32)
    assert model(x).dtype == np.float32


# -- printing ----------------------------------------------------------------------------------

def test_sequential_repr_is_a_tree():
    model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Sequential(nn.Linear(50, 10), nn.LogSoftmax()))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(784 -> 50)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Linear(50 -> 10)\n"
        "    (1): LogSoftmax()\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Sequential()) == "Sequential()"


def test_empty_sequential_is_the_identity():
    x = np.arange(3.0)
    seq = nn.Sequential()
    assert seq(x) is x and seq.backward(x) is x and seq.parameters() == []


# -- the gradient contract: no hidden state ------------------------------------------------------

class _KeepsGradReference(nn.Module):
    """A layer written the obvious way: it keeps a reference to its gradient buffer."""

    def __init__(self):
        self.w = nn.Parameter(np.ones(3))
        self.g = self.w.grad

    def forward(self, x):
        self._save(x)
        return x * self.w.data

    def backward(self, grad, input_grad=True):
        (x,) = self._saved()
        self.g += (grad * x).sum(axis=0)
        return grad * self.w.data


class _AddsIntoGrad(_KeepsGradReference):
    def backward(self, grad, input_grad=True):
        (x,) = self._saved()
        self.w.grad += (grad * x).sum(axis=0)
        return grad * self.w.data


@pytest.mark.parametrize("layer_cls", [_KeepsGradReference, _AddsIntoGrad])
def test_gradient_is_right_however_the_layer_writes_it(layer_cls):
    """The old known-zero flag gave 4 instead of 2 here after zero_grad (a kept reference)."""
    model = nn.Sequential(layer_cls())
    opt = handprop.optim.SGD(model.parameters(), lr=0.0)
    for _ in range(3):
        opt.zero_grad()
        model(np.ones((1, 3)))
        model.backward(np.full((1, 3), 2.0))
        np.testing.assert_array_equal(model[0].w.grad, [2.0, 2.0, 2.0])


def test_a_parameter_shared_by_two_layers_gets_both_gradients_after_zero_grad():
    """Tied weights: the first layer's backward writes the released gradient, the second adds."""
    first, second = nn.Linear(4, 4, dtype=np.float64, rng=0), nn.Linear(4, 4, dtype=np.float64, rng=1)
    second.weight = first.weight
    model = nn.Sequential(first, nn.Tanh(), second)
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    for _ in range(2):
        model.zero_grad()
        model(x)
        model.backward(g)
        h = np.tanh(x @ first.weight.data + first.bias.data)
        gh = (g @ first.weight.data.T) * (1 - h * h)
        np.testing.assert_allclose(first.weight.grad, h.T @ g + x.T @ gh, rtol=1e-12)


def test_a_user_layer_and_a_builtin_layer_writing_one_parameter_both_count():
    class AddsOnes(nn.Module):
        def __init__(self, p):
            self.p = p

        def forward(self, x):
            return x

        def backward(self, grad, input_grad=True):
            self.p.grad += 1.0
            return grad

    lin = nn.Linear(3, 2, dtype=np.float64, rng=0)
    model = nn.Sequential(lin, AddsOnes(lin.weight))
    x, g = np.ones((4, 3)), np.ones((4, 2))
    for _ in range(2):
        model.zero_grad()
        model(x)
        model.backward(g)
        np.testing.assert_array_equal(lin.weight.grad, x.T @ g + 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulate_grad_copies_casts_and_refuses_another_shape(dtype):
    p = nn.Parameter(np.zeros(3, np.float32))
    value = np.ones(3, dtype)
    p.accumulate_grad(value)
    value[:] = 5.0  # the caller reuses its array: the gradient must not change
    assert p.grad.dtype == np.float32
    np.testing.assert_array_equal(p.grad, [1.0, 1.0, 1.0])
    p.accumulate_grad(np.ones(3, dtype))
    np.testing.assert_array_equal(p.grad, [2.0, 2.0, 2.0])
    for released in (False, True):
        if released:
            p.zero_grad()
        with pytest.raises(ValueError, match=r"accumulate_grad got shape \(1,\), expected \(3,\)"):
            p.accumulate_grad(np.ones(1))  # would broadcast through +=


def test_accumulate_matmul_adds_and_refuses_another_shape():
    rng = np.random.default_rng(1)
    p = nn.Parameter(np.zeros((3, 2)))
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((5, 2))
    p.accumulate_matmul(a, b)
    p.accumulate_matmul(a, b)
    np.testing.assert_allclose(p.grad, 2 * a @ b, rtol=1e-14)
    single = nn.Parameter(np.zeros((3, 2), np.float32))  # float64 operands: the gradient keeps its dtype
    single.accumulate_matmul(a, b)
    assert single.grad.dtype == np.float32
    np.testing.assert_allclose(single.grad, a @ b, rtol=1e-6)
    with pytest.raises(ValueError, match=r"accumulate_matmul got \(1, 5\) @ \(5, 2\), expected a product of shape \(3, 2\)"):
        p.accumulate_matmul(a[:1], b)


def test_zero_grad_zeroes_the_same_buffer_in_place():
    lin = nn.Linear(4, 2, rng=0)
    buffer = lin.weight.grad
    lin(np.ones((3, 4), np.float32))
    lin.backward(np.ones((3, 2), np.float32))
    assert buffer.any()
    lin.zero_grad()
    assert lin.weight.grad is buffer and not buffer.any()


def test_assigning_data_of_another_dtype_retypes_the_gradient_buffer():
    lin = nn.Linear(4, 2, rng=0)
    lin(np.ones((1, 4), np.float32))
    lin.backward(np.ones((1, 2), np.float32))
    kept = lin.weight.grad.copy()
    lin.weight.data = lin.weight.data.astype(np.float64)
    assert lin.weight.grad.dtype == np.float64
    np.testing.assert_array_equal(lin.weight.grad, kept)  # accumulated values survive the cast
    lin.zero_grad()
    x = np.random.default_rng(0).standard_normal((5, 4))
    lin(x)
    lin.backward(np.ones((5, 2)) / 3)
    np.testing.assert_allclose(lin.weight.grad, x.T @ (np.ones((5, 2)) / 3), rtol=1e-15)


def test_assigning_data_of_another_shape_gives_a_fresh_zero_buffer():
    p = nn.Parameter(np.ones(3))
    p.grad += 1
    p.data = np.ones((2, 2), np.float32)
    assert p.grad.shape == (2, 2) and p.grad.dtype == np.float32 and not p.grad.any()


@pytest.mark.parametrize("value,message", [(np.zeros(4), r"shape \(4,\)"), (np.zeros(3, np.float32), "float32")])
def test_assigning_a_mismatched_grad_is_refused(value, message):
    p = nn.Parameter(np.ones(3))
    with pytest.raises(ValueError, match=message):
        p.grad = value


# -- losses are their own type -----------------------------------------------------------------

def test_a_loss_is_not_a_layer_and_sequential_refuses_one():
    assert not isinstance(nn.CrossEntropyLoss(), nn.Module)
    with pytest.raises(TypeError, match="argument 2 is CrossEntropyLoss, a loss"):
        nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.CrossEntropyLoss())


def test_tensor_loss_is_a_loss_and_gradcheck_takes_it():
    from handprop.autograd import TensorLoss

    crit = TensorLoss(lambda out, t: ((out - t) ** 2).mean())
    assert isinstance(crit, nn.Loss)
    rng = np.random.default_rng(0)
    report = handprop.gradcheck(crit, rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))
    assert report.passed
