"""The timed training loops of handprop and PyTorch: each library's idiomatic SGD step over
consecutive batches (JAX's are in :mod:`.jax_peer`). Each returns (seconds, per-step losses)."""
from __future__ import annotations

import time
from typing import Any


def train_handprop(model, x: Any, y: Any, bs: int, steps: int, lr: float):
    """The README's loop: ``model.backward(loss_fn.backward())`` (no dL/dx), SGD, zero_grad."""
    import numpy as np

    from .. import nn, optim
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=lr)
    losses = np.empty(steps)
    t0 = time.perf_counter()
    for i in range(steps):
        xb, yb = x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]
        losses[i] = loss_fn(model(xb), yb)
        model.backward(loss_fn.backward())
        opt.step()
        opt.zero_grad()
    return time.perf_counter() - t0, losses


def train_torch(model, x: Any, y: Any, bs: int, steps: int, lr: float):
    """The idiomatic PyTorch loop over the same batches."""
    import numpy as np
    import torch
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = np.empty(steps)
    cross_entropy = torch.nn.functional.cross_entropy
    t0 = time.perf_counter()
    for i in range(steps):
        xb, yb = xt[i * bs:(i + 1) * bs], yt[i * bs:(i + 1) * bs]
        loss = cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[i] = loss.item()
    return time.perf_counter() - t0, losses
