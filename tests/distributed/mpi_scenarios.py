"""Checks that need several processes, run in one ``mpirun -n 2`` job by test_mpirun.py.

Every process also computes the single-process reference itself (it holds all the data), so
each check compares the data-parallel result with one process training on the global batches.
A scaling or sharding error would show far above float32 rounding (1e-5 here). Rank 0 prints
``ok <name>`` per check; a failed assert aborts the job.
"""
from __future__ import annotations

import copy
import os
import signal

import numpy as np

from handprop import nn, optim
from handprop.data import ArrayDataset, DataLoader
from handprop.distributed import (CheckWeights, Communicator, DataParallel, DistributedRecorder,
                                  RanksDivergedError, ShardedLoader, StopRequested, StopSignals,
                                  abort_on_error, check_identical, shard_dataset)
from handprop.train.callbacks import Recorder
from handprop.train.learner import Callback, Learner


def data(n: int = 40, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6), dtype=np.float32), rng.integers(0, classes, n)


def mlp(batchnorm: bool = False) -> nn.Sequential:
    norm = [nn.BatchNorm1d(5, dtype=np.float32)] if batchnorm else []
    return nn.Sequential(nn.Linear(6, 5, rng=0, dtype=np.float32), *norm, nn.ReLU(),
                         nn.Linear(5, 3, rng=1, dtype=np.float32))


def fit(model, loss, train_dl, valid_dl, callbacks, epochs: int = 2, lr: float = 0.1) -> Learner:
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    learn = Learner(model, loss, opt, train_dl, valid_dl, callbacks)
    return learn.fit(epochs)


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


class LossLog(Callback):
    """The training loss every callback sees, step by step."""

    def __init__(self):
        self.losses: list[float] = []

    def after_loss(self) -> None:
        if self.learn.training:
            self.losses.append(self.learn.loss)


def same_as_one_process(comm: Communicator, stop: StopSignals, loss: nn.Loss, onehot: bool, batch: int) -> None:
    """Weights, the loss callbacks see at each step, and epoch metrics after two epochs equal one
    process's, with slices of unequal size (``batch`` odd) and a last batch split unevenly."""
    x, y = data()
    targets = np.eye(3, dtype=np.float32)[y] if onehot else y
    reference = mlp()
    model = copy.deepcopy(reference)
    lr = 0.1 if loss.reduction == "mean" else 0.1 / batch  # a summed loss: a per-example rate
    logs = LossLog(), LossLog()
    single = fit(reference, loss, DataLoader(ArrayDataset(x, targets), batch, shuffle=True, rng=1),
                 DataLoader(ArrayDataset(x, targets), 8), [Recorder(), logs[0]], lr=lr)
    learn = fit(model, copy.deepcopy(loss),
                ShardedLoader(ArrayDataset(x, targets), batch, comm.rank, comm.size, shuffle=True, rng=1),
                DataLoader(shard_dataset(x, targets, comm.rank, comm.size), 8),
                [DistributedRecorder(comm, stop), DataParallel(comm, stop), CheckWeights(comm, every=1), logs[1]],
                lr=lr)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert rel_error(p.data, q.data) < 1e-5, (name, rel_error(p.data, q.data))
    assert len(logs[0].losses) == len(logs[1].losses) > 0
    assert rel_error(np.array(logs[1].losses), np.array(logs[0].losses)) < 1e-5, "the global batch's loss"
    for mine, theirs in zip(learn.history, single.history):
        for key in ("train_loss", "train_accuracy", "valid_loss", "valid_accuracy"):
            assert abs(mine[key] - theirs[key]) <= 1e-5 * max(1.0, abs(theirs[key])), (key, mine, theirs)


def batchnorm_statistics_are_averaged(comm: Communicator, stop: StopSignals) -> None:
    """Each process normalises with its slice's statistics and updates its running statistics
    from them; at the end of the pass they are averaged. With lr 0 the weights stay put, so
    every process can replay what each process's statistics were and check the average."""
    x, y = data()
    model = mlp(batchnorm=True)
    replays = [copy.deepcopy(model) for _ in range(comm.size)]
    def loader(rank: int) -> ShardedLoader:
        return ShardedLoader(ArrayDataset(x, y), 8, rank, comm.size, shuffle=True, rng=1)

    fit(model, nn.CrossEntropyLoss(), loader(comm.rank), None,
        [DataParallel(comm, stop), CheckWeights(comm, every=1000)], epochs=1, lr=0.0)
    for rank, replay in enumerate(replays):
        for xb, _ in loader(rank):
            replay(xb)  # training-mode forward: updates the running statistics
    for name in ("running_mean", "running_var"):
        expected = np.mean([getattr(r[1], name) for r in replays], axis=0)
        assert rel_error(getattr(model[1], name), expected) < 1e-6, name


class Perturb(Callback):
    """On one rank, nudges one weight after a given step (a divergence to be caught)."""

    def __init__(self, rank: int, step: int):
        self.rank, self.step = rank, step

    def after_step(self) -> None:
        if self.learn.train_step == self.step and self.rank == 1:
            self.learn.model[0].weight.data[0, 0] += 1e-6


def divergence_stops_every_process(comm: Communicator, stop: StopSignals) -> None:
    x, y = data()
    loader = ShardedLoader(ArrayDataset(x, y), 8, comm.rank, comm.size, shuffle=True, rng=1)
    callbacks = [DataParallel(comm, stop), Perturb(comm.rank, 3), CheckWeights(comm, every=2)]
    try:
        fit(mlp(), nn.CrossEntropyLoss(), loader, None, callbacks, epochs=3)
    except RanksDivergedError as e:
        message = str(e)
    else:
        raise AssertionError("the divergence was not caught")
    assert message.startswith("after step 4: the weights are no longer identical on every process: "
                              "rank(s) 1 differ from rank 0 in layers.0.weight"), message
    same = {"w": np.ones(3)}
    check_identical(comm, same, "identical arrays")  # no error


def a_signal_on_one_process_stops_all_at_the_same_step(comm: Communicator, stop: StopSignals) -> None:
    x, y = data()
    loader = ShardedLoader(ArrayDataset(x, y), 8, comm.rank, comm.size, shuffle=True, rng=1)

    class SignalAtStep(Callback):
        def after_step(self) -> None:
            if self.learn.train_step == 3 and comm.rank == 1:
                os.kill(os.getpid(), signal.SIGUSR1)

    model = mlp()
    learn = Learner(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), loader, None,
                    [DataParallel(comm, stop), SignalAtStep()])
    try:
        learn.fit(2)
    except StopRequested as e:
        message = str(e)
    else:
        raise AssertionError("no stop")
    assert learn.train_step == 3, learn.train_step
    expected = "SIGUSR1 received" if comm.rank == 1 else "a stop signal sent to another process received"
    assert message == f"{expected}; every process stopped before training step 4", message
    stop.received = None  # handled


def main() -> None:
    comm = Communicator(timeout=60)
    assert comm.size == 2, "run with mpirun -n 2"
    stop = StopSignals().install()
    checks = {
        "cross-entropy (mean) weights and metrics": lambda: same_as_one_process(
            comm, stop, nn.CrossEntropyLoss(), onehot=False, batch=7),
        "MSE (sum) weights and metrics": lambda: same_as_one_process(
            comm, stop, nn.MSELoss(reduction="sum"), onehot=True, batch=9),
        "BatchNorm running statistics": lambda: batchnorm_statistics_are_averaged(comm, stop),
        "divergence caught": lambda: divergence_stops_every_process(comm, stop),
        "agreed stop": lambda: a_signal_on_one_process_stops_all_at_the_same_step(comm, stop),
    }
    with abort_on_error(comm):
        for name, check in checks.items():
            check()
            if comm.is_root:
                print(f"ok {name}", flush=True)


if __name__ == "__main__":
    main()
