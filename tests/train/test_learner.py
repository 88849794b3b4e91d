"""The Learner loop: event order, each Cancel*Exception's semantics, state and predict."""
from __future__ import annotations

import numpy as np
import pytest

from handprop import nn, optim
from handprop.train import (Callback, CancelBatchException, CancelEpochException, CancelFitException,
                            CancelTrainException, CancelValidException, Learner)

from .tiny import EventLog, batches, make_learner

TRAIN_BATCH = ["before_batch", "after_pred", "after_loss", "after_backward", "after_step", "after_batch"]
VALID_BATCH = ["before_batch", "after_pred", "after_loss", "after_batch"]


def epoch_events(n_train=2, n_valid=1):
    return (["before_epoch", "before_train", *TRAIN_BATCH * n_train, "after_train",
             "before_validate", *VALID_BATCH * n_valid, "after_validate", "after_epoch"])


def test_event_order_train_and_valid():
    log = EventLog()
    make_learner(n_train=2, n_valid=1, callbacks=[log]).fit(1)
    assert log.events == ["before_fit", *epoch_events(2, 1), "after_fit"]


def test_event_order_two_epochs_without_validation():
    log = EventLog()
    make_learner(n_train=1, n_valid=None, callbacks=[log]).fit(2)
    one = ["before_epoch", "before_train", *TRAIN_BATCH, "after_train", "after_epoch"]
    assert log.events == ["before_fit", *one, *one, "after_fit"]


def test_training_flag_and_counters_seen_by_callbacks():
    seen = []

    class Spy(Callback):
        def after_loss(self):
            seen.append((self.learn.epoch, self.learn.training, self.learn.iter, self.learn.train_step))

    learn = make_learner(n_train=2, n_valid=1, callbacks=[Spy()]).fit(2)
    assert seen == [(0, True, 0, 0), (0, True, 1, 1), (0, False, 0, 2),
                    (1, True, 0, 2), (1, True, 1, 3), (1, False, 0, 4)]
    assert learn.train_step == 4 and learn.start_epoch == 2


def test_callbacks_run_in_order_of_their_order_attribute():
    calls = []

    def make(name, order):
        cls = type(name, (Callback,), {"order": order, "before_fit": lambda self: calls.append(name)})
        return cls()

    learn = make_learner(callbacks=[make("late", 5), make("early", -5), make("middle", 0)])
    learn.add_callback(make("first", -100))
    learn.fit(0)
    assert calls == ["first", "early", "middle", "late"]


def test_cancel_batch_skips_the_step_and_its_gradient():
    """Cancelling batch 0 after its backward: no step for it, and its gradient must not leak
    into batch 1's step: the result equals one SGD step on batch 1 alone."""
    log = EventLog(raises={"after_backward": CancelBatchException},
                   when=lambda learn: learn.training and learn.iter == 0)
    learn = make_learner(n_train=2, n_valid=None, callbacks=[log])
    ref = make_learner(n_train=2, n_valid=None)
    ref.train_dl = ref.train_dl[1:]  # the same model and data, without batch 0
    learn.fit(1)
    ref.fit(1)
    assert learn.train_step == 1
    for p, q in zip(learn.model.parameters(), ref.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    first = log.events[log.events.index("before_batch"):]
    assert first[:6] == ["before_batch", "after_pred", "after_loss", "after_backward",
                         "after_cancel_batch", "after_batch"]
    assert log.events.count("after_step") == 1


def test_cancel_batch_before_it_runs():
    log = EventLog(raises={"before_batch": CancelBatchException}, when=lambda learn: learn.training)
    learn = make_learner(n_train=3, n_valid=1, callbacks=[log])
    w0 = learn.model.state_dict()
    learn.fit(1)
    assert learn.train_step == 0
    for k, v in learn.model.state_dict().items():
        np.testing.assert_array_equal(v, w0[k])
    assert log.events.count("after_cancel_batch") == 3
    assert log.events.count("after_batch") == 4  # 3 cancelled training batches + 1 validation batch
    assert "after_pred" in log.events  # validation still ran


def test_cancel_train_skips_rest_of_training_but_validates():
    log = EventLog(raises={"before_batch": CancelTrainException},
                   when=lambda learn: learn.training and learn.iter == 1)
    learn = make_learner(n_train=3, n_valid=1, callbacks=[log]).fit(1)
    assert learn.train_step == 1
    assert log.events == ["before_fit", "before_epoch", "before_train", *TRAIN_BATCH, "before_batch",
                          "after_cancel_train", "after_train", "before_validate", *VALID_BATCH,
                          "after_validate", "after_epoch", "after_fit"]


def test_cancel_valid_skips_validation_only():
    log = EventLog(raises={"before_validate": CancelValidException})
    learn = make_learner(n_train=1, n_valid=2, callbacks=[log]).fit(2)
    one = ["before_epoch", "before_train", *TRAIN_BATCH, "after_train", "before_validate",
           "after_cancel_validate", "after_validate", "after_epoch"]
    assert log.events == ["before_fit", *one, *one, "after_fit"]
    assert learn.train_step == 2


def test_cancel_epoch_skips_validation_and_continues_with_next_epoch():
    log = EventLog(raises={"after_train": CancelEpochException}, when=lambda learn: learn.epoch == 0)
    learn = make_learner(n_train=1, n_valid=1, callbacks=[log]).fit(2)
    first = ["before_epoch", "before_train", *TRAIN_BATCH, "after_train", "after_cancel_epoch", "after_epoch"]
    assert log.events == ["before_fit", *first, *epoch_events(1, 1), "after_fit"]
    assert learn.train_step == 2 and learn.start_epoch == 2


def test_cancel_fit_stops_and_after_fit_still_runs():
    log = EventLog(raises={"before_epoch": CancelFitException}, when=lambda learn: learn.epoch == 1)
    learn = make_learner(n_train=2, n_valid=1, callbacks=[log]).fit(5)
    assert log.events == ["before_fit", *epoch_events(2, 1), "before_epoch", "after_cancel_fit", "after_fit"]
    assert learn.train_step == 2
    assert learn.start_epoch == 1, "the next fit continues with the epoch that was cancelled"


def test_cancel_fit_mid_batch_skips_inner_after_events():
    log = EventLog(raises={"after_loss": CancelFitException},
                   when=lambda learn: learn.training and learn.iter == 1)
    learn = make_learner(n_train=3, n_valid=1, callbacks=[log]).fit(1)
    assert learn.train_step == 1
    assert log.events[-3:] == ["after_loss", "after_cancel_fit", "after_fit"]
    for inner in ("after_train", "after_epoch", "before_validate"):
        assert inner not in log.events


def test_predictions_changed_in_after_pred_are_what_the_loss_sees():
    """fast.ai's contract: a callback may replace ``learn.preds`` (e.g. temperature scaling)."""
    seen = []

    class Halve(Callback):
        def after_pred(self):
            self.model_output = self.learn.preds
            self.learn.preds = self.learn.preds / 2

    class Spy(Callback):
        order = 1

        def after_loss(self):
            learn = self.learn
            seen.append((learn.loss, nn.CrossEntropyLoss()(halve.model_output / 2, learn.yb), learn.training))

    halve = Halve()
    make_learner(n_train=2, n_valid=1, callbacks=[halve, Spy()]).fit(1)
    assert [training for *_, training in seen] == [True, True, False]
    for loss, expected, _ in seen:
        assert loss == pytest.approx(expected, rel=1e-6)


def test_other_exceptions_propagate():
    class Boom(Callback):
        def after_step(self):
            raise RuntimeError("boom")

    log = EventLog()
    with pytest.raises(RuntimeError, match="boom"):
        make_learner(callbacks=[Boom(), log]).fit(1)
    assert "after_fit" not in log.events


def test_fit_continues_where_it_left_off_and_validates_epochs():
    learn = make_learner(n_train=2, n_valid=None)
    learn.fit(1)
    learn.fit(3)
    assert learn.train_step == 6
    learn.fit(3)  # nothing left to do
    assert learn.train_step == 6
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ValueError, match="epochs"):
            learn.fit(bad)


def test_training_changes_weights_and_reduces_loss():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    model = nn.Sequential(nn.Linear(4, 16, rng=1), nn.ReLU(), nn.Linear(16, 3, rng=2))
    loss = nn.CrossEntropyLoss()
    before = loss(model(x), y)
    dl = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    Learner(model, loss, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), dl).fit(30)
    assert loss(model(x), y) < 0.5 * before


def test_state_round_trip_resumes_identically():
    a = make_learner(n_train=3, n_valid=None, momentum=0.9)
    a.fit(2)
    state = a.state()
    a.fit(4)
    b = make_learner(n_train=3, n_valid=None, momentum=0.9)
    for p in b.model.parameters():  # different weights, to be overwritten
        p.data[...] = 1.0
    b.load_state(state)
    assert b.start_epoch == 2 and b.train_step == 6
    b.fit(4)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_predict_uses_eval_mode_and_chunks():
    from handprop.train.metrics import predict

    learn = make_learner()
    x = np.random.default_rng(3).standard_normal((25, 4)).astype(np.float32)
    full = learn.model(x)
    np.testing.assert_array_equal(predict(learn.model, x, batch_size=7), full)
    assert learn.model.training
