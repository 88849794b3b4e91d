"""The shipped callbacks on a tiny Learner: Recorder, LRSchedule, EarlyStopping,
NonFiniteGuard, Checkpoint, History and ProgressBar."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest

from handprop import nn
from handprop.train import (Callback, Checkpoint, EarlyStopping, History, LRSchedule, NonFiniteGuard,
                            ProgressBar, Recorder)

from .tiny import batches, make_learner


class SetRecord(Callback):
    """Puts ``values[epoch]`` into ``learn.record[key]`` before the monitors look at it."""

    order = 25

    def __init__(self, key, values):
        self.key, self.values = key, values

    def after_epoch(self):
        self.learn.record[self.key] = self.values[self.learn.epoch]


def test_recorder_weights_batch_losses_by_size():
    learn = make_learner(n_train=1, n_valid=None, callbacks=[Recorder()])
    learn.valid_dl = batches(2, size=6, seed=5, last=2)  # batches of 6 and 2 images
    learn.train_dl = batches(2, size=3, seed=6, last=1)
    learn.fit(1)
    rec = learn.history[0]
    learn.model.eval()
    for name, dl in (("train", None), ("valid", learn.valid_dl)):
        if dl is None:
            continue
        x = np.concatenate([b[0] for b in dl])
        y = np.concatenate([b[1] for b in dl])
        out = learn.model(x)
        assert rec["valid_loss"] == pytest.approx(nn.CrossEntropyLoss()(out, y), rel=1e-5)
        acc = float(np.mean(out.argmax(1) == y))
        assert rec["valid_accuracy"] == pytest.approx(acc)
        assert rec["valid_error"] == pytest.approx(1 - acc)
    assert rec["epoch"] == 1 and rec["lr"] == learn.opt.lr and rec["time"] >= 0
    assert {"train_loss", "train_accuracy", "train_error"} <= rec.keys()


def test_recorder_sum_reduction_sums():
    learn = make_learner(n_train=1, n_valid=2, callbacks=[Recorder()])
    learn.loss_func = nn.CrossEntropyLoss(reduction="sum")
    learn.fit(1)
    learn.model.eval()
    x = np.concatenate([b[0] for b in learn.valid_dl])
    y = np.concatenate([b[1] for b in learn.valid_dl])
    assert learn.history[0]["valid_loss"] == pytest.approx(nn.CrossEntropyLoss(reduction="sum")(learn.model(x), y),
                                                           rel=1e-5)


def test_lr_schedule_sets_lr_per_training_step():
    seen = []

    class Spy(Callback):
        def after_step(self):
            seen.append((self.learn.train_step - 1, self.learn.opt.lr))

    sched = lambda step: 0.01 * (step + 1)
    learn = make_learner(n_train=3, n_valid=1, callbacks=[LRSchedule(sched), Spy()]).fit(2)
    assert seen == [(s, pytest.approx(sched(s))) for s in range(6)]
    assert learn.opt.lr == pytest.approx(sched(5)), "validation must not advance the schedule"


def test_early_stopping_after_patience_epochs_without_improvement():
    losses = [1.0, 0.5, 0.6, 0.55, 0.7, 0.1, 0.1]
    learn = make_learner(n_train=1, n_valid=None,
                         callbacks=[Recorder(), SetRecord("valid_loss", losses), EarlyStopping(patience=3)])
    learn.fit(len(losses))
    assert len(learn.history) == 5, "epochs 3, 4, 5 did not beat 0.5: stop after epoch 5"
    assert "early stopping" in learn.stop_reason and "0.5000" in learn.stop_reason


def test_early_stopping_min_delta():
    losses = [1.0, 0.99, 0.98, 0.97]
    learn = make_learner(n_train=1, n_valid=None,
                         callbacks=[Recorder(), SetRecord("valid_loss", losses),
                                    EarlyStopping(patience=2, min_delta=0.05)])
    learn.fit(4)
    assert len(learn.history) == 3


def test_early_stopping_counts_epochs_before_a_resume():
    """A resumed run (history restored, a fresh EarlyStopping) stops where the uninterrupted one did."""
    losses = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9]
    straight = make_learner(n_train=1, n_valid=None,
                            callbacks=[Recorder(), SetRecord("valid_loss", losses), EarlyStopping(patience=3)])
    straight.fit(6)
    first = make_learner(n_train=1, n_valid=None,
                         callbacks=[Recorder(), SetRecord("valid_loss", losses), EarlyStopping(patience=3)])
    first.fit(3)
    resumed = make_learner(n_train=1, n_valid=None,
                           callbacks=[Recorder(), SetRecord("valid_loss", losses), EarlyStopping(patience=3)])
    resumed.load_state(first.state())
    resumed.history = list(first.history)
    resumed.fit(6)
    assert len(straight.history) == len(resumed.history) == 5


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_guard_rolls_back_and_explains(bad):
    class Poison(Callback):
        order = -16  # before the guard looks at the loss

        def after_loss(self):
            if self.learn.training and self.learn.epoch == 1 and self.learn.iter == 1:
                self.learn.loss = bad

    snap = {}

    class Snapshot(Callback):
        order = -30

        def before_epoch(self):
            snap[self.learn.epoch] = self.learn.model.state_dict()

    learn = make_learner(n_train=3, n_valid=1, callbacks=[Recorder(), Poison(), NonFiniteGuard(), Snapshot()])
    learn.fit(4)
    assert learn.diverged
    assert f"non-finite loss ({bad})" in learn.stop_reason
    assert "epoch 2, batch 2" in learn.stop_reason and "lower learning rate" in learn.stop_reason
    assert len(learn.history) == 1
    for k, v in learn.model.state_dict().items():
        np.testing.assert_array_equal(v, snap[1][k])


def test_non_finite_guard_on_real_divergence():
    learn = make_learner(n_train=4, n_valid=None, lr=1e8, callbacks=[NonFiniteGuard()])
    learn.train_dl = [(x * 1e3, y) for x, y in learn.train_dl]
    with np.errstate(all="ignore"):
        learn.fit(3)
    assert getattr(learn, "diverged", False)
    assert all(np.isfinite(p.data).all() for p in learn.model.parameters())


def test_checkpoint_writes_last_when_logged_and_best_on_improvement():
    saved = []
    losses = [0.9, 0.5, 0.7, 0.4, 0.6]
    ckpt = Checkpoint(lambda name, state: saved.append((name, state["epoch"])), every=2)
    learn = make_learner(n_train=2, n_valid=None,
                         callbacks=[Recorder(), SetRecord("valid_loss", losses), ckpt])
    learn.fit(5)
    lasts = [e for n, e in saved if n == "last.npz"]
    bests = [e for n, e in saved if n == "best.npz"]
    assert lasts == [1, 2, 4, 5]  # epoch 1, every 2nd, the last
    assert bests[-1] == 4, "best.npz holds the epoch with the lowest loss"
    assert ckpt.best == 0.4
    assert bests == sorted(bests) and len(set(bests)) == len(bests)


def test_checkpoint_state_carries_model_optimizer_and_rng():
    saved = {}
    rng = np.random.default_rng(1)
    ckpt = Checkpoint(lambda name, state: saved.__setitem__(name, state), rng=rng)
    learn = make_learner(n_train=2, n_valid=1, momentum=0.9, callbacks=[Recorder(), ckpt])
    learn.fit(1)
    state = saved["last.npz"]
    assert state["epoch"] == 1 and state["train_step"] == 2
    assert state["rng"] == rng.bit_generator.state
    for k, v in learn.model.state_dict().items():
        np.testing.assert_array_equal(state["model"][k], v)
    assert any(k.startswith("state.") for k in state["opt"]), "momentum buffers are saved"
    assert ckpt.epoch_start_state["epoch"] == 1, "after an epoch, a Ctrl-C keeps the finished epoch"


def test_history_writes_on_logged_epochs_and_at_the_end():
    calls = []
    learn = make_learner(n_train=1, n_valid=None, callbacks=[Recorder()])
    learn.add_callback(History(lambda: calls.append(len(learn.history)), every=3))
    learn.fit(7)
    assert calls == [1, 3, 6, 7, 7]


def test_progress_bar_prints_a_table_without_a_terminal():
    stream = io.StringIO()
    learn = make_learner(n_train=2, n_valid=1, callbacks=[Recorder(), ProgressBar(stream=stream)])
    learn.fit(3)
    lines = stream.getvalue().splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "time"]
    assert [int(l.split()[0]) for l in lines[1:]] == [1, 2, 3]
    row = lines[-1].split()
    assert float(row[1]) == pytest.approx(learn.history[-1]["train_loss"], abs=1e-4)
    assert row[4] == f"{learn.history[-1]['valid_accuracy']:.2%}"


def test_progress_bar_error_metric_and_every():
    stream = io.StringIO()
    learn = make_learner(n_train=1, n_valid=None,
                         callbacks=[Recorder(), ProgressBar(metric="error", every=4, label="step", stream=stream)])
    learn.fit(10)
    lines = stream.getvalue().splitlines()
    assert lines[0].split() == ["step", "train_loss", "train_err", "elapsed"]
    assert [int(l.split()[0]) for l in lines[1:]] == [1, 4, 8, 10]
    assert not math.isnan(float(lines[-1].split()[1]))
