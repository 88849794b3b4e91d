"""ActivationStats: its numbers against NumPy on the same activations, warnings, files."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from handprop import nn, optim
from handprop.train import Callback, CancelBatchException, Learner
from handprop.train.stats import ActivationStats, activation_summary

from .helpers import PNG_SIGNATURE


def _learner(callbacks, n_train=4, n_valid=2, lr=0.05, width=32, seed=0):
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(12, width, rng=seed), nn.ReLU(), nn.Linear(width, 3, rng=seed + 1))
    data = [(rng.standard_normal((16, 12)).astype(np.float32), rng.integers(0, 3, 16)) for _ in range(n_train + n_valid)]
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return Learner(model, nn.CrossEntropyLoss(), opt, data[:n_train], data[n_train:] or None, callbacks)


class Spy(Callback):
    """Keeps, per training step taken, copies of every layer's output, every gradient and the
    weights before and after the step: the raw material for an independent computation."""

    def before_fit(self):
        self.outputs, self.grads, self.before, self.after = [], [], [], []
        self.handles = [m.register_forward_hook(self._keep) for m in self.learn.model.layers]
        self.batch = []

    def _keep(self, module, inputs, output):
        if self.learn.training:
            self.batch.append(output.copy())

    def before_batch(self):
        self.batch = []

    def after_backward(self):
        self.pending = ([p.grad.copy() for p in self.learn.model.parameters()],
                        [p.data.copy() for p in self.learn.model.parameters()])

    def after_step(self):
        self.outputs.append(self.batch)
        self.grads.append(self.pending[0])
        self.before.append(self.pending[1])
        self.after.append([p.data.copy() for p in self.learn.model.parameters()])

    def after_fit(self):
        for h in self.handles:
            h.remove()


def _numpy_summary(a, bins, hist_max, zero_tol):
    a = a.astype(np.float64)
    hist, _ = np.histogram(np.minimum(np.abs(a), hist_max), bins=bins, range=(0, hist_max))
    return a.mean(), a.std(), np.mean(np.abs(a) < zero_tol), hist


def test_numbers_equal_numpy_on_the_same_activations_and_steps():
    stats, spy = ActivationStats(hist_max=3.0, zero_tol=0.05, update_sample=None), Spy()
    learn = _learner([stats, spy])
    learn.fit(2)
    assert stats.steps == [1, 2, 3, 4, 5, 6, 7, 8] and stats.epochs == [0] * 4 + [1] * 4  # no validation batches
    for log, i in zip(stats.layers, range(3)):
        assert log.name == f"layers.{i}" and log.module is learn.model[i]
        for step, outputs in enumerate(spy.outputs):
            mean, std, near_zero, hist = _numpy_summary(outputs[i], 40, 3.0, 0.05)
            assert log.mean[step] == pytest.approx(mean, rel=1e-5, abs=1e-6)
            assert log.std[step] == pytest.approx(std, rel=1e-5)
            assert log.near_zero[step] == near_zero
            np.testing.assert_array_equal(log.hist[step], hist)
    assert 0.3 < np.mean(stats.layers[1].near_zero) < 0.8  # ReLU: about half exactly zero
    for j, log in enumerate(stats.params):
        for step in range(8):
            g, before, after = spy.grads[step][j], spy.before[step][j], spy.after[step][j]
            assert log.grad_norm[step] == pytest.approx(np.linalg.norm(g.astype(np.float64)), rel=1e-5)
            ratio = np.linalg.norm((after - before).astype(np.float64)) / np.linalg.norm(before.astype(np.float64))
            assert log.update_ratio[step] == pytest.approx(ratio, rel=1e-4)


def test_sampled_update_ratio_uses_a_fixed_sample_and_is_close_to_the_exact_one():
    stats, spy = ActivationStats(update_sample=100), Spy()
    learn = _learner([stats, spy], width=64)
    learn.fit(1)
    weight = stats.params[0]  # 12 x 64 = 768 entries > 100: sampled; the biases are not
    assert weight.sample.size == 100 and np.all(np.diff(weight.sample) > 0)
    assert stats.params[1].sample is None
    for step in range(4):
        before, after = spy.before[step][0].ravel(), spy.after[step][0].ravel()
        s = weight.sample
        on_sample = np.linalg.norm(after[s] - before[s]) / np.linalg.norm(before[s])
        exact = np.linalg.norm(after - before) / np.linalg.norm(before)
        assert weight.update_ratio[step] == pytest.approx(on_sample, rel=1e-5)
        assert weight.update_ratio[step] == pytest.approx(exact, rel=0.3)


def test_every_records_every_nth_step_and_cancelled_steps_are_skipped():
    class CancelSecond(Callback):
        def after_backward(self):
            if self.learn.iter == 1:
                raise CancelBatchException()

    stats = ActivationStats(every=2)
    _learner([stats], n_train=3).fit(2)
    assert stats.steps == [1, 3, 5]  # train_step 0, 2, 4 before each step, across epochs
    stats = ActivationStats()
    _learner([stats, CancelSecond()], n_train=3).fit(1)
    assert stats.steps == [1, 2] and all(len(log.mean) == 2 for log in stats.layers)
    assert all(len(log.grad_norm) == len(log.update_ratio) == 2 for log in stats.params)


def test_chosen_modules_only_even_a_container():
    learn = _learner([])
    stats = ActivationStats(modules=[learn.model[1], learn.model])
    learn.add_callback(stats)
    learn.fit(1)
    assert [log.name for log in stats.layers] == ["layers.1", "Sequential"]
    np.testing.assert_array_equal(stats.layers[1].hist[-1].sum(), 16 * 3)  # the model's output


def test_summary_invariants_out_of_range_and_non_finite_values():
    a = np.array([0.0, -0.1, 0.26, 9.99, 10.0, 50.0, -np.inf, np.nan], dtype=np.float32)
    _, _, near_zero, hist = activation_summary(a, 40, 10.0, 1e-3)
    assert hist.sum() == a.size and near_zero == 1 / 8
    assert hist[0] == 2 and hist[1] == 1 and hist[39] == 5  # 9.99, 10, 50, inf and NaN in the last bin


@pytest.mark.parametrize("a", [
    1000 + 0.01 * np.random.default_rng(0).standard_normal(4096),  # the mean dwarfs the std
    1e25 * np.random.default_rng(1).standard_normal(4096),  # squares overflow float32
], ids=["large mean", "huge values"])
def test_std_is_accurate_where_float32_sums_of_squares_are_not(a):
    a = a.astype(np.float32)
    mean, std, _, _ = activation_summary(a, 40, 10.0, 1e-3)
    assert std == pytest.approx(a.astype(np.float64).std(), rel=1e-4)
    assert mean == pytest.approx(a.astype(np.float64).mean(), rel=1e-5, abs=1e-5 * std)


def test_epoch_warnings_name_dead_and_collapsed_layers():
    stream = io.StringIO()
    learn = _learner([ActivationStats(stream=stream)], lr=0.0)
    learn.model[0].bias.data[...] = -100  # every ReLU input negative: dead
    learn.fit(2)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("warning: epoch 1: ") and lines[1].startswith("warning: epoch 2: ")
    assert "layers.1 (ReLU) outputs 100% near zero (dead units?)" in lines[0]
    assert "layers.1 (ReLU) std 0 < 0.001 (collapsed)" in lines[0]
    assert "layers.0" not in lines[0] and "layers.2" not in lines[0]

    stream = io.StringIO()
    learn = _learner([ActivationStats(stream=stream)], lr=0.0)
    learn.model[0].weight.data *= 1e-6
    learn.model[0].bias.data[...] = 0
    learn.fit(1)
    assert "layers.0 (Linear) std" in stream.getvalue() and "(collapsed)" in stream.getvalue()

    stream = io.StringIO()
    _learner([ActivationStats(stream=stream)]).fit(2)
    assert stream.getvalue() == ""


def test_writes_json_and_png_and_removes_its_hooks(tmp_path):
    stats = ActivationStats(out=tmp_path)
    learn = _learner([stats])
    learn.fit(1)
    saved = json.loads((tmp_path / "stats.json").read_text())
    assert saved["steps"] == [1, 2, 3, 4] and saved["epochs"] == [1] * 4 and saved["bins"] == 40
    assert [layer["name"] for layer in saved["layers"]] == ["layers.0", "layers.1", "layers.2"]
    assert saved["layers"][0]["layer"] == "Linear(12 -> 32)" and len(saved["layers"][0]["hist"][0]) == 40
    assert [p["name"] for p in saved["params"]] == [n for n, _ in learn.model.named_parameters()]
    assert (tmp_path / "stats.png").read_bytes().startswith(PNG_SIGNATURE)
    assert all("forward" not in vars(layer) for layer in learn.model.modules())


def test_non_finite_numbers_are_null_in_json(tmp_path):
    stats = ActivationStats(out=tmp_path)
    learn = _learner([stats], n_train=1, lr=0.0)
    learn.model[0].weight.data[0, 0] = np.inf
    with np.errstate(all="ignore"):
        learn.fit(1)
    saved = json.loads((tmp_path / "stats.json").read_text())
    assert saved["layers"][0]["std"] == [None]
    assert "layers.0 (Linear) has non-finite activations" in stats.warnings[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"bins": 0}, "bins must be a positive integer"),
    ({"every": 1.5}, "every must be a positive integer"),
    ({"update_sample": 0}, "update_sample must be a positive integer or None"),
    ({"hist_max": -1.0}, "hist_max must be a finite number > 0"),
    ({"zero_tol": float("nan")}, "zero_tol must be a finite number > 0"),
    ({"modules": ["relu"]}, r"modules\[0\] is str, not a Module"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"ActivationStats: {message}"):
        ActivationStats(**kwargs)


def test_a_module_outside_the_model_is_an_error():
    learn = _learner([ActivationStats(modules=[nn.ReLU()])])
    with pytest.raises(ValueError, match="ReLU\\(\\) is not part of the model being trained"):
        learn.fit(1)


def test_plotting_leaves_pyplot_alone(tmp_path):
    """The figure is a Figure object: pyplot (which owns a notebook's backend) is never imported."""
    stats = ActivationStats()
    _learner([stats]).fit(1)
    (tmp_path / "stats.json").write_text(json.dumps(stats.as_dict()))
    code = (
        "import json, sys\n"
        "from handprop.train.stats_plots import plot_stats\n"
        f"plot_stats(json.load(open({str(tmp_path / 'stats.json')!r})), {str(tmp_path / 'a.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "a.png").read_bytes().startswith(PNG_SIGNATURE)
