"""The learning-rate finder: the sweep, the stop rule, the suggestions, the exact restore."""
from __future__ import annotations

import argparse
import math
from types import SimpleNamespace

import numpy as np
import pytest

from handprop import nn, optim
from handprop.commands import lr_find as lr_find_command
from handprop.train import Callback, CancelFitException, Learner, Recorder
from handprop.train.lr_finder import LRFinder, centred_average, steepest_lr, valley_lr

from .helpers import PNG_SIGNATURE


def _data(n_batches, seed=0, size=32):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((10, 4))
    out = []
    for _ in range(n_batches):
        x = rng.standard_normal((size, 10)).astype(np.float32)
        out.append((x, (x @ w).argmax(1)))
    return out


def _learner(opt_cls=optim.Adam, n_batches=30, callbacks=(), **opt_kwargs):
    model = nn.Sequential(nn.Linear(10, 16, rng=0), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.1, rng=1),
                          nn.Linear(16, 4, rng=2))
    return Learner(model, nn.CrossEntropyLoss(), opt_cls(model.parameters(), lr=1e-2, **opt_kwargs),
                   _data(n_batches), _data(2, seed=9), list(callbacks))


class CountBatches(Callback):
    def __init__(self):
        self.count = 0

    def before_batch(self):
        self.count += 1


@pytest.mark.parametrize("opt_cls, kwargs", [(optim.Adam, {}), (optim.SGD, {"momentum": 0.9})])
def test_weights_buffers_grads_optimiser_state_and_modes_are_restored_exactly(opt_cls, kwargs):
    counter = CountBatches()
    learn = _learner(opt_cls, callbacks=[Recorder(), counter], **kwargs)
    learn.fit(1)  # the optimiser now has state (Adam's moments, SGD's momentum buffers)
    batches_seen = counter.count
    learn.model[3].eval()  # one module in eval mode, the rest training
    for p in learn.model.parameters():
        p.grad[...] = np.random.default_rng(1).standard_normal(p.shape)
    before = (learn.model.state_dict(), [p.grad.copy() for p in learn.model.parameters()],
              learn.opt.state_dict(), [m.training for m in learn.model.modules()])
    position = (learn.epoch, learn.start_epoch, learn.train_step, list(learn.callbacks), len(learn.history))

    result = learn.lr_find(num_it=50)

    assert len(result.lrs) > 10  # it did train
    state, grads, opt_state, modes = before
    after = learn.model.state_dict()
    assert after.keys() == state.keys() and "layers.1.running_mean" in after
    for k in state:
        np.testing.assert_array_equal(after[k], state[k], err_msg=k)
    for p, g in zip(learn.model.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)
    restored = learn.opt.state_dict()
    assert restored.keys() == opt_state.keys()
    for k in opt_state:
        np.testing.assert_array_equal(restored[k], opt_state[k], err_msg=k)
    assert learn.opt.lr == 1e-2
    assert [m.training for m in learn.model.modules()] == modes
    assert all("_cache" not in vars(m) for m in learn.model.modules())
    assert (learn.epoch, learn.start_epoch, learn.train_step, learn.callbacks, len(learn.history)) == position
    assert counter.count == batches_seen  # the learner's own callbacks sat the sweep out


def test_a_fresh_optimiser_is_left_fresh():
    learn = _learner(optim.Adam)
    learn.lr_find(num_it=20)
    assert all(state == {} for state in learn.opt.state.values())


def test_the_sweep_is_exponential_and_crosses_epochs():
    learn = _learner(optim.SGD, n_batches=7)
    result = learn.lr_find(start_lr=1e-6, end_lr=1e-4, num_it=20)
    assert len(result.lrs) == 20 and result.stop_reason == "reached 0.0001"
    np.testing.assert_allclose(result.lrs, np.geomspace(1e-6, 1e-4, 20), rtol=1e-12)
    assert len(result.losses) == len(result.smoothed) == 20 and np.all(np.isfinite(result.losses))


def test_as_a_callback_it_ignores_validation_batches():
    finder = LRFinder(num_it=100)
    learn = _learner(optim.SGD, n_batches=5, callbacks=[finder])
    learn.fit(1)
    assert len(finder.lrs) == 5  # not 5 + the 2 validation batches


def _feed(finder, losses):
    """Drive an LRFinder by hand with a loss sequence; the number of batches it took."""
    learn = SimpleNamespace(training=True, opt=SimpleNamespace(lr=0.0), loss=0.0)
    finder.learn = learn
    finder.before_fit()
    for i, loss in enumerate(losses):
        finder.before_batch()
        learn.loss = loss
        try:
            finder.after_loss()
        except CancelFitException:
            return i + 1
    return len(losses)


def test_stops_when_the_running_smoothed_loss_passes_three_times_its_minimum():
    losses = [2.0] * 10 + [0.5] * 30 + [50.0] * 30
    finder = LRFinder(num_it=100)
    taken = _feed(finder, losses)
    avg, best, expected = 0.0, math.inf, None  # the same rule, written out independently
    for i, loss in enumerate(losses):
        avg = 0.98 * avg + 0.02 * loss
        smooth = avg / (1 - 0.98 ** (i + 1))
        if smooth > 3 * best:
            expected = i + 1
            break
        best = min(best, smooth)
    assert 40 < taken == expected < 70
    assert finder.stop_reason == "smoothed loss above 3x its minimum"
    assert len(finder.lrs) == taken


def test_stops_at_a_non_finite_loss():
    finder = LRFinder()
    assert _feed(finder, [1.0, 1.0, float("nan"), 1.0]) == 3
    assert finder.stop_reason == "loss not finite"


def test_a_loss_that_diverges_at_once_is_a_clear_error():
    learn = _learner(optim.SGD)
    with pytest.raises(ValueError, match="lr_find: the loss .* after \\d batches, from lr 1e\\+06"):
        learn.lr_find(start_lr=1e6, end_lr=1e9, num_it=10)


def _curve():
    """A textbook range-test curve: a plateau at 3, a fall to 0.5 centred on 1e-3, a blow-up after 1e-1."""
    lrs = np.geomspace(1e-7, 10, 100)
    x = np.log10(lrs)
    return lrs, 0.5 + 2.5 / (1 + np.exp(3 * (x + 3))) + np.where(x > -1, 10 * (x + 1) ** 2, 0)


def test_steepest_and_valley_on_a_known_curve():
    lrs, losses = _curve()
    assert steepest_lr(lrs, losses) == pytest.approx(1e-3, rel=0.2)
    valley = valley_lr(lrs, losses)
    # plateau ends where 10% of the drop is done (x = -3 - ln(9)/3), the minimum is near 1e-1
    plateau_end, minimum = 10 ** (-3 - math.log(9) / 3), lrs[np.argmin(losses)]
    assert valley == pytest.approx(math.sqrt(plateau_end * minimum), rel=0.15)
    assert plateau_end < valley < minimum


def test_suggestions_ignore_the_non_finite_tail():
    lrs, losses = _curve()
    losses[80:] = np.nan
    assert steepest_lr(lrs, losses) == pytest.approx(1e-3, rel=0.2)
    assert lrs[0] < valley_lr(lrs, losses) < lrs[79]


def test_centred_average_equals_the_windowed_mean():
    values = np.random.default_rng(0).standard_normal(30)
    values[25:] = np.inf
    out = centred_average(values, 4)
    for i in range(25):
        np.testing.assert_allclose(out[i], values[max(0, i - 4):min(25, i + 5)].mean())
    assert np.all(np.isnan(out[25:]))
    np.testing.assert_allclose(centred_average(np.array([1.0, 2.0, 6.0]), 4), [3.0, 3.0, 3.0])


@pytest.mark.parametrize("kwargs, message", [
    ({"start_lr": 0.0}, "start_lr must be a finite number > 0"),
    ({"end_lr": float("inf")}, "end_lr must be a finite number > 0"),
    ({"start_lr": 1.0, "end_lr": 0.1}, "start_lr \\(1\\) must be below end_lr \\(0.1\\)"),
    ({"num_it": 1}, "num_it must be an integer >= 2"),
    ({"stop_factor": 1.0}, "stop_factor must be above 1"),
])
def test_bad_sweep_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"lr_find: {message}"):
        _learner().lr_find(**kwargs)


def test_the_command_prints_both_suggestions_and_writes_the_plot(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    lr_find_command.add_arguments(parser)
    args = parser.parse_args(["--num-it", "60", "--out", str(tmp_path / "new")])
    built = []
    assert lr_find_command.run(args, lambda a: built.append(a) or _learner(optim.SGD, n_batches=20)) == 0
    assert built == [args]
    out = capsys.readouterr().out
    assert "swept " in out and "suggested learning rate: " in out and "(steepest descent); valley: " in out
    assert (tmp_path / "new" / "lr_find.png").read_bytes().startswith(PNG_SIGNATURE)
