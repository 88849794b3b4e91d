"""The notebooks' experiments, run through the public API on real MNIST.

1. lesson "forward and backward passes": a 784-50-1 ReLU MLP regressing the digit label with MSE;
   every gradient (w1, b1, w2, b2 and the input) equals PyTorch's autograd in float64.
2. lesson "minibatch training": a 784-50-10 ReLU MLP, cross-entropy, SGD lr 0.5, batch 64, one
   epoch over the 50,000 training images (raw [0, 1] pixels, batches in order as in the notebook)
   reaches >= 92 % on the 10,000 validation images, for every seed.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

import handprop
from engine_helpers import load_mnist, rel_error
from handprop import nn, optim


@pytest.fixture(scope="module")
def mnist_split(data_root):
    """(x_train, y_train, x_valid, y_valid): the notebooks' 50k/10k split of MNIST's training set."""
    (x, y), (x_test, y_test) = load_mnist(data_root / "mnist")
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    x = x.reshape(len(x), -1)
    y = y.astype(np.int64)
    return x[:50000], y[:50000], x[50000:], y[50000:]


def _single_blas_thread():
    """Tiny matmuls run far slower with many BLAS threads on a loaded machine; pin to one if we can."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def test_normalisation_with_train_statistics(mnist_split):
    x_train, _, x_valid, _ = mnist_split
    x_train = x_train.astype(np.float32) / 255
    mean, std = float(x_train.mean(dtype=np.float64)), float(x_train.std(dtype=np.float64))
    # the lesson's mnist.pkl gave 0.1304 / 0.3073; the original IDX files give 0.1310 / 0.3085
    assert mean == pytest.approx(0.1304, abs=2e-3) and std == pytest.approx(0.3073, abs=2e-3)
    normed = (x_train - np.float32(mean)) / np.float32(std)
    handprop.assert_near_zero(normed.mean(dtype=np.float64))
    handprop.assert_near_zero(1 - normed.std(dtype=np.float64))
    valid = (x_valid.astype(np.float32) / 255 - mean) / std
    handprop.assert_near_zero(valid.mean(), tol=0.05)  # the valid set with the *train* statistics


def test_mse_mlp_gradients_equal_pytorch(torch, mnist_split):
    x_train, y_train, _, _ = mnist_split
    x_raw = x_train[:1000].astype(np.float64) / 255
    x = (x_raw - x_raw.mean()) / x_raw.std()
    y = y_train[:1000].astype(np.float64)  # the digit as a regression target, as in the lesson
    m, nh = 784, 50

    handprop.manual_seed(0)
    lin1, lin2 = nn.Linear(m, nh, dtype=np.float64), nn.Linear(nh, 1, dtype=np.float64)
    nn.init.normal_(lin1.weight, std=1 / math.sqrt(m))  # the lesson's simplified Kaiming init
    nn.init.normal_(lin2.weight, std=1 / math.sqrt(nh))
    nn.init.zeros_(lin1.bias)
    nn.init.zeros_(lin2.bias)
    model = nn.Sequential(lin1, nn.ReLU(), lin2)
    crit = nn.MSELoss()

    out = model(x)
    assert out.shape == (1000, 1)
    loss = crit(out, y)  # (N, 1) against (N,): squeezed, as the lesson's mse
    gx = model.backward(crit.backward(), input_grad=True)

    t = torch
    w1 = t.tensor(lin1.weight.data, requires_grad=True)
    b1 = t.tensor(lin1.bias.data, requires_grad=True)
    w2 = t.tensor(lin2.weight.data, requires_grad=True)
    b2 = t.tensor(lin2.bias.data, requires_grad=True)
    tx = t.tensor(x, requires_grad=True)
    tout = (tx @ w1 + b1).clamp_min(0.0) @ w2 + b2
    tloss = (tout.squeeze(-1) - t.tensor(y)).pow(2).mean()
    tloss.backward()

    assert rel_error(loss, tloss.item()) <= 1e-10
    for name, mine, theirs in [("w1", lin1.weight.grad, w1.grad), ("b1", lin1.bias.grad, b1.grad),
                               ("w2", lin2.weight.grad, w2.grad), ("b2", lin2.bias.grad, b2.grad),
                               ("input", gx, tx.grad)]:
        assert np.abs(mine).max() > 0, f"{name}: gradient is all zero"
        assert rel_error(mine, theirs.numpy()) <= 1e-6, f"{name} gradient differs from PyTorch"


def _train_one_epoch(x_train, y_train, seed, lr=0.5, bs=64):
    handprop.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))  # PyTorch's default init
    crit = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=lr)
    n = len(x_train)
    losses = []
    for i in range((n - 1) // bs + 1):  # the notebook's loop, last partial batch included
        xb, yb = x_train[i * bs:(i + 1) * bs], y_train[i * bs:(i + 1) * bs]
        losses.append(crit(model(xb), yb))
        model.backward(crit.backward(), input_grad=False)
        opt.step()
        opt.zero_grad()
    return model, losses


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_minibatch_sgd_one_epoch_reaches_92_percent(mnist_split, seed):
    x_train, y_train, x_valid, y_valid = mnist_split
    x_train = x_train.astype(np.float32) / 255  # raw [0, 1] pixels
    x_valid = x_valid.astype(np.float32) / 255
    with _single_blas_thread():
        model, losses = _train_one_epoch(x_train, y_train, seed)
        model.eval()
        accuracy = float((model(x_valid).argmax(axis=1) == y_valid).mean())
    assert len(losses) == 782 and all(np.isfinite(losses))
    assert losses[0] == pytest.approx(math.log(10), abs=0.15)  # chance level at the start
    assert np.mean(losses[-100:]) < 0.35
    assert accuracy >= 0.92, f"seed {seed}: validation accuracy {accuracy:.4f} < 0.92"
    assert all("_cache" not in vars(m) for m in model.modules())
