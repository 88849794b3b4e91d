"""Each setting has its effect: what ``Run.create`` built (model, loss, optimiser, loaders,
callbacks, data), inspected, not only that a run finishes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from handprop import nn, optim
from handprop.data import load_dataset, to_float_flat
from handprop.optim.lr_scheduler import cosine, one_cycle
from handprop.train import (Checkpoint, EarlyStopping, History, LRSchedule, NonFiniteGuard, ProgressBar,
                            Recorder)
from handprop.train import run as run_mod
from handprop.train.config import TrainConfig
from handprop.train.run import Run

#: 600 training and 500 validation images, one narrow hidden layer: quick to build and to fit.
SMALL = {"subset": 600, "valid": 500, "hidden": [8]}


@pytest.fixture(scope="module")
def mnist(data_root):
    """The real MNIST arrays, read once for the module and read-only (a run must not change them)."""
    (x, y), (xt, yt) = load_dataset("mnist", root=data_root / "mnist", download=False)
    for a in (x, y, xt, yt):
        a.flags.writeable = False
    return (x, y), (xt, yt)


@pytest.fixture
def loads(mnist, monkeypatch):
    """Every ``load_dataset`` call a run makes, as ``(name, root, download)``; returns the cached arrays."""
    calls = []

    def load(name, root=None, download=True):
        calls.append((name, root, download))
        return mnist

    monkeypatch.setattr(run_mod, "load_dataset", load)
    return calls


def build(tmp_path, recipe: str | None = None, quiet: bool = True, **settings) -> Run:
    """``Run.create`` of ``TrainConfig.create(recipe, **settings)`` (SMALL unless a recipe is given)."""
    base = {} if recipe else SMALL
    return Run.create(TrainConfig.create(recipe, **{**base, **settings}), tmp_path / "run", quiet=quiet)


def callback(run: Run, kind: type):
    found = [cb for cb in run.learn.callbacks if type(cb) is kind]
    assert len(found) <= 1, kind
    return found[0] if found else None


def params_of(run: Run) -> list[np.ndarray]:
    return [p.data for p in run.model.parameters()]


# -- batches and their order ----------------------------------------------------------------------

def test_epfl_recipe_with_a_batch_size_trains_with_that_batch(tmp_path, loads):
    run = build(tmp_path, "epfl", batch_size=64)
    dl = run.learn.train_dl
    assert dl.batch_size == 64 and dl.shuffle and len(dl) == 16, "1,000 images in batches of 64"
    assert [len(xb) for xb, _ in dl] == [64] * 15 + [40]
    assert "batch 64" in run.describe() and "epochs" in run.describe()


def test_full_batch_is_one_unshuffled_batch(tmp_path, loads):
    run = build(tmp_path, batch_size=None)
    train, valid = run.learn.train_dl, run.learn.valid_dl
    assert train.batch_size is None and not train.shuffle and len(train) == 1
    assert valid.batch_size is None and len(valid) == 1
    assert callback(run, Checkpoint).every == 1, "5 steps: a tenth of them rounds to every step"


def test_no_shuffle_keeps_the_order_every_epoch(tmp_path, loads):
    run = build(tmp_path, shuffle=False, batch_size=100)
    x = run.data.x_train
    for _ in range(2):
        np.testing.assert_array_equal(np.concatenate([xb for xb, _ in run.learn.train_dl]), x)


def test_shuffle_draws_a_new_permutation_each_epoch(tmp_path, loads):
    run = build(tmp_path, batch_size=100)
    x, dl = run.data.x_train, run.learn.train_dl
    epochs = [np.concatenate([xb for xb, _ in dl]) for _ in range(2)]
    for seen in epochs:
        assert not np.array_equal(seen, x)
        np.testing.assert_array_equal(np.sort(seen, axis=0), np.sort(x, axis=0))
    assert not np.array_equal(epochs[0], epochs[1])


def test_the_seed_fixes_weights_and_batch_order(tmp_path, loads):
    a, b, c = (build(tmp_path, seed=s) for s in (3, 3, 4))
    for p, q in zip(params_of(a), params_of(b)):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(params_of(a)[0], params_of(c)[0]), "the first layer's weights"
    first = [next(iter(run.learn.train_dl))[0] for run in (a, b, c)]
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.array_equal(first[0], first[2])


# -- data: splits, subsets, normalisation ---------------------------------------------------------

def test_subset_and_valid_take_the_documented_images(tmp_path, loads, mnist):
    (x, y), _ = mnist
    run = build(tmp_path, normalize=False)
    d = run.data
    np.testing.assert_array_equal(d.x_train, to_float_flat(x[:600]))
    np.testing.assert_array_equal(d.y_train, y[:600])
    np.testing.assert_array_equal(d.x_valid, to_float_flat(x[-500:]))
    np.testing.assert_array_equal(d.y_valid, y[-500:])
    assert len(d.x_test) == 10000 and d.normalize is None


def test_normalisation_statistics_are_the_training_split_s(tmp_path, loads, mnist):
    (x, _), (xt, _) = mnist
    run = build(tmp_path)
    train = to_float_flat(x[:600]).astype(np.float64)
    norm = run.data.normalize
    assert norm.mean == pytest.approx(train.mean(), rel=1e-9) and norm.std == pytest.approx(train.std(), rel=1e-9)
    for other in (to_float_flat(xt), to_float_flat(x[-500:]), to_float_flat(x)):
        assert abs(norm.mean - other.astype(np.float64).mean()) > 1e-4, "fitted on the training split only"
    np.testing.assert_allclose(run.data.x_test, (to_float_flat(xt) - norm.mean) / norm.std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run.data.x_valid, (to_float_flat(x[-500:]) - norm.mean) / norm.std, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(run.data.x_train.mean(), 0, atol=1e-5)


def test_the_epfl_recipe_tests_on_the_first_1000_images_and_full_on_all(tmp_path, loads, mnist):
    _, (xt, yt) = mnist
    run = build(tmp_path, "epfl")
    assert len(run.data.x_train) == 1000 and run.data.x_valid is None and run.valid_name == "test"
    np.testing.assert_array_equal(run.data.y_test, yt[:1000])
    full = build(tmp_path, "epfl", subset=None, test_subset=None)
    assert len(full.data.x_train) == 60000 and len(full.data.x_test) == 10000


def test_dataset_data_dir_and_offline_reach_the_loader(tmp_path, loads):
    build(tmp_path, data_dir=tmp_path / "idx", download=False)
    build(tmp_path)
    assert loads == [("mnist", str(tmp_path / "idx"), False), ("mnist", None, True)]


# -- model and initial weights ----------------------------------------------------------------------

@pytest.mark.parametrize("name", list(nn.registry.activations()))
def test_activation_builds_every_hidden_layer(tmp_path, loads, name):
    run = build(tmp_path, activation=name, hidden=[8, 6])
    entry = nn.registry.activations()[name]
    layers = list(run.model)
    assert [type(m) for m in layers[::2]] == [nn.Linear] * 3
    assert [(m.in_features, m.out_features) for m in layers[::2]] == [(784, 8), (8, 6), (6, 10)]
    for layer in layers[1::2]:
        assert type(layer) is entry.cls
        for key, value in entry.activation.kwargs.items():
            assert getattr(layer, key) == value


def test_leaky_activation_has_slope_0_01(tmp_path, loads):
    layer = list(build(tmp_path, activation="leaky").model)[1]
    assert layer.negative_slope == 0.01
    np.testing.assert_allclose(layer(np.array([[-1.0, 2.0]], np.float32)), [[-0.01, 2.0]])


def test_output_activation_of_the_epfl_recipe(tmp_path, loads):
    layers = list(build(tmp_path, "epfl").model)
    assert [type(m).__name__ for m in layers] == ["Linear", "Tanh", "Linear", "Tanh"]


@pytest.mark.parametrize("std", [0.5, None])
def test_init_normal_draws_weights_and_biases_with_its_std(tmp_path, loads, std):
    run = build(tmp_path, init="normal", init_std=std, hidden=[64])
    w, b = params_of(run)[:2]
    expected = 0.01 if std is None else std
    assert w.std() == pytest.approx(expected, rel=0.05) and b.std() == pytest.approx(expected, rel=0.3)


@pytest.mark.parametrize("init, std", [("kaiming_normal", (2 / 784) ** 0.5),  # relu's gain sqrt(2) either way
                                       ("xavier_normal", 2 ** 0.5 * (2 / (784 + 64)) ** 0.5)])
def test_init_reaches_the_weights(tmp_path, loads, init, std):
    w = params_of(build(tmp_path, init=init, hidden=[64]))[0]
    assert w.std() == pytest.approx(std, rel=0.05)


# -- loss, targets and optimiser ----------------------------------------------------------------------

@pytest.mark.parametrize("loss, cls", [("ce", nn.CrossEntropyLoss), ("mse", nn.MSELoss)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_loss_and_reduction(tmp_path, loads, loss, cls, reduction):
    run = build(tmp_path, loss=loss, reduction=reduction)
    assert type(run.loss) is cls and run.loss.reduction == reduction
    assert run.learn.loss_func is run.loss


def test_mse_targets_are_one_hot_rows_of_target_on_and_off(tmp_path, loads):
    run = build(tmp_path, "epfl")
    _, yb = next(iter(run.learn.train_dl))
    assert yb.shape == (1000, 10)
    np.testing.assert_array_equal(yb[np.arange(1000), run.data.y_train], np.float32(0.9))
    assert (yb == np.float32(-0.9)).sum() == 9000
    _, labels = next(iter(build(tmp_path, shuffle=False).learn.train_dl))
    assert labels.ndim == 1 and labels.dtype == np.int64, "cross-entropy gets the labels"


@pytest.mark.parametrize("name, cls", [("adam", optim.Adam), ("adamw", optim.AdamW), ("sgd", optim.SGD)])
def test_weight_decay_reaches_every_optimizer(tmp_path, loads, name, cls):
    run = build(tmp_path, optimizer=name, weight_decay=0.05, lr=0.02)
    assert type(run.opt) is cls and run.opt.weight_decay == 0.05 and run.opt.lr == 0.02
    assert run.opt.params == run.model.parameters() and run.learn.opt is run.opt


def test_momentum_and_nesterov_reach_sgd(tmp_path, loads):
    opt = build(tmp_path, optimizer="sgd", momentum=0.9, nesterov=True).opt
    assert (opt.momentum, opt.nesterov) == (0.9, True)
    assert build(tmp_path, optimizer="sgd", momentum=0.8).opt.nesterov is False


def test_epfl_per_sample_lr_is_divided_by_the_training_set_size(tmp_path, loads):
    run = build(tmp_path, "epfl")
    assert run.lr == pytest.approx(0.1 / 1000) and run.opt.lr == run.lr


# -- callbacks ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, make", [("onecycle", one_cycle), ("cosine", cosine)])
def test_the_schedule_spans_every_step(tmp_path, loads, name, make):
    run = build(tmp_path, schedule=name, lr=0.02, epochs=3, batch_size=100)
    schedule, expected = callback(run, LRSchedule).schedule, make(0.02, 3 * 6)
    assert [schedule(s) for s in range(18)] == [expected(s) for s in range(18)]


def test_no_schedule_keeps_the_lr(tmp_path, loads):
    run = build(tmp_path, schedule="none", lr=0.02)
    assert callback(run, LRSchedule) is None and run.opt.lr == 0.02


def test_patience_watches_the_validation_loss(tmp_path, loads):
    stop = callback(build(tmp_path, patience=3), EarlyStopping)
    assert (stop.monitor, stop.patience) == ("valid_loss", 3)
    assert callback(build(tmp_path), EarlyStopping) is None


def test_best_checkpoint_watches_the_validation_loss(tmp_path, loads):
    assert callback(build(tmp_path), Checkpoint).monitor == "valid_loss"
    assert callback(build(tmp_path, "epfl"), Checkpoint).monitor == "test_loss", "no validation split"


def test_log_every_sets_printing_history_and_checkpoints(tmp_path, loads):
    run = build(tmp_path, log_every=3, quiet=False)
    assert callback(run, Checkpoint).every == callback(run, History).every == callback(run, ProgressBar).every == 3
    assert callback(build(tmp_path), ProgressBar) is None, "quiet: no table"


def test_every_run_records_and_guards(tmp_path, loads):
    run = build(tmp_path)
    assert callback(run, Recorder) is not None and callback(run, NonFiniteGuard) is not None


def test_full_batch_progress_counts_steps_and_shows_the_error(tmp_path, loads):
    bar = callback(build(tmp_path, "epfl", quiet=False), ProgressBar)
    assert (bar.label, bar.metric, bar.every) == ("step", "error", 100)


# -- the description ------------------------------------------------------------------------------------

def test_description_shows_every_setting_that_differs_from_the_defaults(tmp_path, loads):
    plain = build(tmp_path).describe().splitlines()[1]
    assert plain.endswith("schedule onecycle, 5 epochs, seed 0"), plain
    line = build(tmp_path, optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=1e-4, init="normal",
                 init_std=0.05, patience=2).describe().splitlines()[1]
    for part in ("SGD lr 0.1", "init normal", "init std 0.05", "momentum 0.9", "nesterov", "weight decay 0.0001",
                 "patience 2"):
        assert part in line, (part, line)


# -- resume ----------------------------------------------------------------------------------------------

def test_resume_restores_the_best_loss_so_far(tmp_path, loads):
    first = build(tmp_path, epochs=2, lr=0.02, batch_size=100, schedule="none")  # (extendable: no schedule)
    first.fit()
    losses = [r["valid_loss"] for r in first.learn.history]
    resumed = Run.resume(tmp_path / "run", {"epochs": 3}, quiet=True)
    assert resumed.cfg == TrainConfig.create(**SMALL, epochs=3, lr=0.02, batch_size=100, schedule="none")
    assert resumed.checkpoint.best == min(losses), "a worse epoch 3 must not overwrite best.npz"
    assert resumed.learn.start_epoch == 2 and len(resumed.learn.history) == 2
    for p, q in zip(params_of(resumed), params_of(first)):
        np.testing.assert_array_equal(p, q)


# -- inspection settings ----------------------------------------------------------------------------

def test_stats_adds_activation_stats_that_write_into_the_run_directory(tmp_path, loads):
    from handprop.train.stats import TRAIN_EVERY, ActivationStats

    assert callback(build(tmp_path / "a"), ActivationStats) is None
    stats = callback(build(tmp_path / "b", stats=True), ActivationStats)
    assert stats is not None and stats.every == TRAIN_EVERY and Path(stats.out) == tmp_path / "b" / "run"


def test_init_lsuv_gives_each_linear_unit_variance_on_training_images(tmp_path, loads):
    run = build(tmp_path, init="lsuv")
    x = run.data.x_train[:512]
    for layer in run.model:
        x = layer(x)
        if isinstance(layer, nn.Linear):
            assert abs(float(x.std()) - 1) < 0.02, layer
    kaiming = build(tmp_path / "k", init="kaiming_normal")
    assert abs(float(kaiming.model[0](run.data.x_train[:512]).std()) - 1) > 0.05, "lsuv must change something"
