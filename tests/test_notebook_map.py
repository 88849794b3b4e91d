"""docs/notebooks.md, proven: every function of the notebooks, transcribed here into NumPy as the
notebook writes it, equals the handprop function or class that replaces it (float64).

The transcriptions keep the notebooks' shapes: fast.ai's weights are (in, out) with ``x @ w + b``;
EPFL's ``forward_pass`` works on one sample with ``w @ x + b`` and weights (out, in).
"""
from __future__ import annotations

import numpy as np
import pytest

import handprop as hp
from handprop import nn, optim
from handprop.nn import functional as F
from handprop.train.metrics import accuracy as hp_accuracy

RNG = np.random.default_rng(0)
X = RNG.standard_normal((8, 6))
W1, B1 = RNG.standard_normal((6, 5)), RNG.standard_normal(5)
W2, B2 = RNG.standard_normal((5, 1)), RNG.standard_normal(1)
Y = RNG.standard_normal(8)
LOGITS = RNG.standard_normal((8, 4)) * 3
LABELS = RNG.integers(0, 4, 8)


# -- fast.ai, "forward and backward passes" (notebooks 000/002) -------------------------------------

def nb_lin(x, w, b): return x @ w + b                                  # noqa: E704
def nb_relu(x): return np.maximum(x, 0.0)                              # noqa: E704  (x.clamp_min(0.))
def nb_mse(output, targ): return ((output[:, 0] - targ) ** 2).mean()   # noqa: E704
def nb_mse_grad(inp, targ): return 2.0 * (inp.squeeze(-1) - targ)[:, None] / inp.shape[0]  # noqa: E704
def nb_relu_grad(inp, out_g): return (inp > 0).astype(inp.dtype) * out_g  # noqa: E704


def nb_lin_grad(inp, out_g, w, b):
    return out_g @ w.T, inp.T @ out_g, out_g.sum(0)


def nb_forward_and_backward(inp, targ, w1, b1, w2, b2):
    l1 = inp @ w1 + b1
    a1 = nb_relu(l1)
    l2 = a1 @ w2 + b2
    loss = nb_mse(l2, targ)
    g_l2 = nb_mse_grad(l2, targ)
    g_a1, g_w2, g_b2 = nb_lin_grad(a1, g_l2, w2, b2)
    g_l1 = nb_relu_grad(l1, g_a1)
    g_inp, g_w1, g_b1 = nb_lin_grad(inp, g_l1, w1, b1)
    return loss, g_inp, g_w1, g_b1, g_w2, g_b2


def _linear(w, b):
    lin = nn.Linear(*w.shape, dtype=np.float64)
    lin.weight.data[...], lin.bias.data[...] = w, b
    return lin


def test_lin_is_F_linear_and_nn_Linear():
    np.testing.assert_allclose(F.linear(X, W1, B1), nb_lin(X, W1, B1), rtol=1e-15)
    np.testing.assert_allclose(_linear(W1, B1)(X), nb_lin(X, W1, B1), rtol=1e-15)


def test_relu_is_F_relu_and_nn_ReLU():
    np.testing.assert_array_equal(F.relu(X), nb_relu(X))
    np.testing.assert_array_equal(nn.ReLU()(X), nb_relu(X))


def test_mse_is_nn_MSELoss_with_the_notebooks_column_output():
    out = RNG.standard_normal((8, 1))
    crit = nn.MSELoss()
    assert crit(out, Y) == pytest.approx(nb_mse(out, Y), rel=1e-15)
    assert F.mse(out, Y) == pytest.approx(nb_mse(out, Y), rel=1e-15)
    np.testing.assert_allclose(crit.backward(), nb_mse_grad(out, Y), rtol=1e-15)   # mse_grad


def test_relu_grad_and_lin_grad_are_the_layers_backward():
    relu = nn.ReLU()
    relu(X)
    g = RNG.standard_normal(X.shape)
    np.testing.assert_array_equal(relu.backward(g), nb_relu_grad(X, g))
    lin = _linear(W1, B1)
    lin(X)
    g = RNG.standard_normal((8, 5))
    gx = lin.backward(g)
    for ours, theirs in zip([gx, lin.weight.grad, lin.bias.grad], nb_lin_grad(X, g, W1, B1)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-14)


def test_forward_and_backward_is_sequential_forward_then_backward():
    model = nn.Sequential(_linear(W1, B1), nn.ReLU(), _linear(W2, B2))
    crit = nn.MSELoss()
    loss = crit(model(X), Y)
    gx = model.backward(crit.backward(), input_grad=True)  # the notebooks' inp.g
    expected = nb_forward_and_backward(X, Y, W1, B1, W2, B2)
    assert loss == pytest.approx(expected[0], rel=1e-15)
    grads = [gx, model[0].weight.grad, model[0].bias.grad, model[2].weight.grad, model[2].bias.grad]
    for ours, theirs in zip(grads, expected[1:]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13)


def test_normalize_is_data_Normalize_fitted_on_the_training_split():
    from handprop.data import Normalize
    train, valid = RNG.random((50, 6)).astype(np.float32), RNG.random((10, 6)).astype(np.float32)
    m, s = train.mean(), train.std()
    norm = Normalize().fit(train)
    np.testing.assert_allclose(norm(valid), (valid - m) / s, rtol=1e-5, atol=1e-6)


# -- fast.ai, "minibatch training" (notebook 003) --------------------------------------------------

def nb_log_softmax(x): return x - np.log(np.exp(x).sum(-1, keepdims=True))  # noqa: E704


def nb_logsumexp(x):
    m = x.max(-1)
    return m + np.log(np.exp(x - m[:, None]).sum(-1))


def nb_nll(inp, target): return -inp[np.arange(target.shape[0]), target].mean()   # noqa: E704
def nb_accuracy(out, yb): return (np.argmax(out, axis=1) == yb).astype(np.float64).mean()  # noqa: E704


def test_logsumexp_and_log_softmax():
    np.testing.assert_allclose(F.logsumexp(LOGITS), nb_logsumexp(LOGITS), rtol=1e-14)
    np.testing.assert_allclose(F.log_softmax(LOGITS), nb_log_softmax(LOGITS), rtol=1e-13)
    np.testing.assert_allclose(nn.LogSoftmax()(LOGITS), nb_log_softmax(LOGITS), rtol=1e-13)
    big = LOGITS * 1e4  # where the notebook's first log_softmax overflows and the logsumexp one does not
    assert np.isfinite(F.log_softmax(big)).all()


def test_nll_and_cross_entropy():
    lp = nb_log_softmax(LOGITS)
    assert F.nll(lp, LABELS) == pytest.approx(nb_nll(lp, LABELS), rel=1e-14)
    assert nn.NLLLoss()(lp, LABELS) == pytest.approx(nb_nll(lp, LABELS), rel=1e-14)
    assert nn.CrossEntropyLoss()(LOGITS, LABELS) == pytest.approx(nb_nll(lp, LABELS), rel=1e-13)


def test_accuracy():
    assert hp_accuracy(LOGITS, LABELS) == pytest.approx(nb_accuracy(LOGITS, LABELS))


def nb_fit(model, crit, x, y, lr, bs, epochs):
    """The notebook's loop, written against handprop layers with the updates done by hand."""
    n = len(x)
    for _ in range(epochs):
        for i in range((n - 1) // bs + 1):
            xb, yb = x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]
            crit(model(xb), yb)
            model.backward(crit.backward())
            for p in model.parameters():
                p.data -= lr * p.grad
                p.grad.fill(0)


def test_fit_is_learner_fit_with_sgd_in_dataset_order():
    from handprop.data import ArrayDataset, DataLoader
    from handprop.train.learner import Learner

    x, y = RNG.standard_normal((100, 6)).astype(np.float32), RNG.integers(0, 4, 100)  # the loader's float32

    def model():
        hp.manual_seed(3)
        return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))
    by_hand, learned = model(), model()
    nb_fit(by_hand, nn.CrossEntropyLoss(), x, y, lr=0.5, bs=32, epochs=2)
    dl = DataLoader(ArrayDataset(x, y), batch_size=32, shuffle=False)
    Learner(learned, nn.CrossEntropyLoss(), optim.SGD(learned.parameters(), lr=0.5), dl).fit(2)
    for a, b in zip(by_hand.parameters(), learned.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-6)


# -- EPFL practical 3 (notebook 004) ---------------------------------------------------------------

def nb_sigma(x): return 2 / (1 + np.exp(-2 * x)) - 1                 # noqa: E704  (tanh)
def nb_dsigma(x): return 1 - nb_sigma(x) ** 2                       # noqa: E704
def nb_loss(v, t): return ((v - t) ** 2).sum()                      # noqa: E704
def nb_dloss(v, t): return 2 * (v - t)                              # noqa: E704


def nb_forward_pass(w1, b1, w2, b2, x):
    s1 = w1 @ x + b1
    x1 = nb_sigma(s1)
    s2 = w2 @ x1 + b2
    return x, s1, x1, s2, nb_sigma(s2)


def nb_backward_pass(w1, b1, w2, b2, t, x, s1, x1, s2, x2):
    dl_ds2 = nb_dsigma(s2) * nb_dloss(x2, t)
    dl_ds1 = nb_dsigma(s1) * (w2.T @ dl_ds2)
    return np.outer(dl_ds1, x), dl_ds1, np.outer(dl_ds2, x1), dl_ds2


def test_sigma_dsigma_are_tanh_and_its_backward():
    np.testing.assert_allclose(F.tanh(X), nb_sigma(X), rtol=1e-13, atol=1e-15)
    tanh = nn.Tanh()
    tanh(X)
    np.testing.assert_allclose(tanh.backward(np.ones_like(X)), nb_dsigma(X), rtol=1e-12, atol=1e-15)


def test_loss_dloss_are_summed_mse():
    v, t = RNG.standard_normal((1, 10)), RNG.standard_normal((1, 10))
    crit = nn.MSELoss(reduction="sum")
    assert crit(v, t) == pytest.approx(nb_loss(v, t), rel=1e-14)
    np.testing.assert_allclose(crit.backward(), nb_dloss(v, t), rtol=1e-14)
    assert nn.MSELoss("sum")(np.full((1, 10), 6.0), np.full((1, 10), 2.0)) == 160.0  # the notebook's check


def test_forward_backward_pass_and_update_are_one_sgd_step_of_the_tanh_mlp():
    w1, b1 = RNG.standard_normal((5, 6)) * 0.5, RNG.standard_normal(5)  # (out, in) as in the notebook
    w2, b2 = RNG.standard_normal((3, 5)) * 0.5, RNG.standard_normal(3)
    x, t = RNG.standard_normal(6), RNG.standard_normal(3)
    model = nn.Sequential(_linear(w1.T, b1), nn.Tanh(), _linear(w2.T, b2), nn.Tanh())
    crit = nn.MSELoss(reduction="sum")
    out = model(x[None])
    np.testing.assert_allclose(out[0], nb_forward_pass(w1, b1, w2, b2, x)[-1], rtol=1e-13)
    crit(out, t[None])
    model.backward(crit.backward())
    dw1, db1, dw2, db2 = nb_backward_pass(w1, b1, w2, b2, t, *nb_forward_pass(w1, b1, w2, b2, x))
    for ours, theirs in zip([model[0].weight.grad, model[0].bias.grad, model[2].weight.grad, model[2].bias.grad],
                            [dw1.T, db1, dw2.T, db2]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    eta = 0.01  # the update: w = w - eta * dl_dw is optim.SGD without momentum
    optim.SGD(model.parameters(), lr=eta).step()
    np.testing.assert_allclose(model[0].weight.data, (w1 - eta * dw1).T, rtol=1e-13)
    np.testing.assert_allclose(model[2].bias.data, b2 - eta * db2, rtol=1e-13)
