"""TensorModule / TensorLoss / apply_module: autograd code inside the hand-written Module contract."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from handprop import nn
from handprop.autograd import Tensor, TensorLoss, TensorModule, apply_module, no_grad

TOL = 1e-12


def _data(seed=0, n=6, d=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, 4, n)


def _hand_mlp():
    return nn.Sequential(nn.Linear(5, 7, dtype=np.float64, rng=1), nn.ReLU(),
                         nn.Linear(7, 4, dtype=np.float64, rng=2))


def _step(model, x, y):
    crit = nn.CrossEntropyLoss()
    model.zero_grad()
    loss = crit(model(x), y)
    gx = model.backward(crit.backward(), input_grad=True)
    return loss, gx, [p.grad.copy() for p in model.parameters()]


def test_sequential_mixing_hand_written_and_autograd_layers(close):
    x, y = _data()
    hand = _hand_mlp()
    mixed = copy.deepcopy(hand)
    mixed.layers[1] = TensorModule(lambda t: t.relu())
    lin = mixed.layers[2]
    mixed.layers[2] = TensorModule(lambda t, w, b: t @ w + b, [lin.weight, lin.bias])
    assert [id(p) for p in mixed.parameters()] == [id(p) for p in mixed.layers[0].parameters()] + [
        id(lin.weight), id(lin.bias)]
    (l1, gx1, g1), (l2, gx2, g2) = _step(hand, x, y), _step(mixed, x, y)
    assert l1 == pytest.approx(l2, rel=1e-14)
    close(gx2, gx1, TOL, "input grad")
    for a, b in zip(g2, g1):
        close(a, b, TOL, "param grad")


def test_parameter_grads_are_added_not_overwritten(close):
    x, _ = _data()
    lin = nn.Linear(5, 3, dtype=np.float64, rng=0)
    tm = TensorModule(lambda t, w, b: t @ w + b, [lin.weight, lin.bias])
    g = np.random.default_rng(1).standard_normal((6, 3))
    for _ in range(2):
        tm(x)
        tm.backward(g)
    close(lin.weight.grad, 2 * x.T @ g, TOL, "weight grad")
    close(lin.bias.grad, 2 * g.sum(0), TOL, "bias grad")


class Affine(TensorModule):
    """The subclass pattern: Parameters as attributes, forward_tensor gets them as Tensors."""

    def __init__(self, w, b):
        super().__init__()
        self.weight, self.bias = nn.Parameter(w), nn.Parameter(b)

    def forward_tensor(self, x, w, b):
        return (x @ w + b).tanh()


def test_subclass_pattern_matches_hand_written_layers(close):
    x, _ = _data(3)
    lin = nn.Linear(5, 2, dtype=np.float64, rng=4)
    hand = nn.Sequential(lin, nn.Tanh())
    mine = Affine(lin.weight.data.copy(), lin.bias.data.copy())
    g = np.random.default_rng(5).standard_normal((6, 2))
    close(mine(x), hand(x), TOL, "forward")
    close(mine.backward(g), hand.backward(g, input_grad=True), TOL, "input grad")
    close(mine.weight.grad, lin.weight.grad, TOL, "weight grad")
    close(mine.bias.grad, lin.bias.grad, TOL, "bias grad")


def test_input_grad_false_skips_the_input_but_not_the_parameters(close):
    x, _ = _data()
    lin = nn.Linear(5, 3, dtype=np.float64, rng=0)
    tm = TensorModule(lambda t, w: t @ w, [lin.weight])
    g = np.ones((6, 3))
    tm(x)
    assert tm.backward(g, input_grad=False) is None
    close(lin.weight.grad, x.T @ g, TOL, "weight grad")


def test_eval_and_no_grad_forward_records_nothing_and_backward_raises():
    x, _ = _data()
    tm = TensorModule(lambda t: t.sigmoid())
    tm.eval()
    np.testing.assert_allclose(tm(x), 1 / (1 + np.exp(-x)))
    with pytest.raises(RuntimeError, match="before forward"):
        tm.backward(np.ones_like(x))
    tm.train()
    with no_grad():
        tm(x)
    with pytest.raises(RuntimeError, match="before forward"):
        tm.backward(np.ones_like(x))


def test_bad_use_of_tensor_module():
    with pytest.raises(TypeError, match="not a Parameter"):
        TensorModule(lambda t, w: t @ w, [np.ones((2, 2))])
    with pytest.raises(TypeError, match="not a Tensor"):
        TensorModule(lambda t: t.data * 2)(np.ones(3))
    with pytest.raises(NotImplementedError):
        TensorModule()(np.ones(3))
    tm = TensorModule(lambda t: t * 2)
    tm(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        tm.backward(np.ones((3, 2)))


def test_output_independent_of_input_gives_zero_input_grad():
    tm = TensorModule(lambda t: Tensor(np.ones(t.shape)))
    tm(np.ones((2, 2)))
    np.testing.assert_array_equal(tm.backward(np.ones((2, 2))), np.zeros((2, 2)))


def test_tensor_loss_matches_hand_written_losses(close):
    x, y = _data()
    mse_hand, mse_tensor = nn.MSELoss(), TensorLoss(lambda out, t: ((out - t) ** 2).mean())
    target = np.random.default_rng(2).standard_normal(x.shape)
    assert mse_tensor(x, target) == pytest.approx(mse_hand(x, target), rel=1e-14)
    close(mse_tensor.backward(), mse_hand.backward(), TOL, "mse grad")
    ce_hand = nn.CrossEntropyLoss()
    ce_tensor = TensorLoss(lambda out, t: -out.log_softmax()[range(len(t)), t].mean())
    logits = x[:, :4]
    assert ce_tensor(logits, y) == pytest.approx(ce_hand(logits, y), rel=1e-14)
    close(ce_tensor.backward(), ce_hand.backward(), TOL, "cross-entropy grad")
    with pytest.raises(ValueError, match="scalar"):
        TensorLoss(lambda out, t: out * 2)(x, y)


def test_apply_module_runs_a_hand_written_layer_inside_a_graph(close, torch):
    x, y = _data()
    lin = nn.Linear(5, 4, dtype=np.float64, rng=3)
    xt = Tensor(x, requires_grad=True)
    loss = -apply_module(lin, (xt * 2).tanh()).log_softmax()[range(6), y].mean()
    loss.backward()
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(lin.weight.data, requires_grad=True)
    tb = torch.tensor(lin.bias.data, requires_grad=True)
    tl = torch.nn.functional.cross_entropy((tx * 2).tanh() @ tw + tb, torch.tensor(y))
    tl.backward()
    assert loss.item() == pytest.approx(tl.item(), rel=1e-12)
    close(xt.grad, tx.grad.numpy(), 1e-12, "input grad")
    close(lin.weight.grad, tw.grad.numpy(), 1e-12, "weight grad (in the Parameter)")
    close(lin.bias.grad, tb.grad.numpy(), 1e-12, "bias grad (in the Parameter)")


def test_apply_module_asks_a_whole_model_for_its_input_gradient(close):
    """A Sequential returns dL/dx only when asked; the graph node through it must ask."""
    x, _ = _data()
    model = _hand_mlp()
    xt = Tensor(x, requires_grad=True)
    apply_module(model, xt).sum().backward()
    ref = Tensor(x, requires_grad=True)
    w1, b1, w2, b2 = (Tensor(p.data) for p in model.parameters())
    ((ref @ w1 + b1).relu() @ w2 + b2).sum().backward()
    close(xt.grad, ref.grad, TOL, "input grad through a Sequential")
