"""A tiny Learner on random data: 4 inputs, 3 classes, no files, milliseconds per fit."""
from __future__ import annotations

import numpy as np

from handprop import nn, optim
from handprop.train import Callback, Learner


def batches(n_batches: int, size: int = 4, seed: int = 0, last: int | None = None):
    rng = np.random.default_rng(seed)
    sizes = [size] * n_batches
    if last is not None:
        sizes[-1] = last
    return [(rng.standard_normal((s, 4)).astype(np.float32), rng.integers(0, 3, s)) for s in sizes]


def make_learner(n_train: int = 2, n_valid: int | None = 1, callbacks=(), lr: float = 0.1,
                 momentum: float = 0.0, seed: int = 0) -> Learner:
    model = nn.Sequential(nn.Linear(4, 5, rng=seed), nn.ReLU(), nn.Linear(5, 3, rng=seed + 1))
    opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    valid = batches(n_valid, seed=seed + 100) if n_valid else None
    return Learner(model, nn.CrossEntropyLoss(), opt, batches(n_train, seed=seed), valid, callbacks)


class EventLog(Callback):
    """Records every event it is called for as ``(event, training, epoch, iter)``, and raises
    ``raises[event]`` (an exception class) when ``when(learn)`` holds at that event."""

    order = 0

    def __init__(self, raises: dict | None = None, when=lambda learn: True):
        self.events: list[str] = []
        self.raises, self.when = raises or {}, when

    def __getattr__(self, name: str):
        if not (name.startswith("before_") or name.startswith("after_")):
            raise AttributeError(name)

        def record():
            self.events.append(name)
            exc = self.raises.get(name)
            if exc is not None and self.when(self.learn):
                raise exc()
        return record
