"""``handprop train | evaluate | info`` as a user meets them: the run directory, user errors
(one line on stderr, no traceback, exit 2), the non-finite guard, model save/load."""
from __future__ import annotations

import csv
import re
import subprocess
import sys

import numpy as np
import pytest

from handprop.data import load_dataset, to_float_flat
from handprop.serialize import load_arrays, load_model
from train.helpers import (PNG_SIGNATURE, SMALL, handprop_cmd, child_env, read_metrics, run_child, run_main,
                           small_run_once)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, data_root):
    return small_run_once(tmp_path_factory, data_root)


@pytest.fixture
def hp_data(monkeypatch, data_root):
    monkeypatch.setenv("HANDPROP_DATA", str(data_root))
    return data_root


# -- the run directory ----------------------------------------------------------------------------

def test_run_directory_holds_every_file(small_run):
    out, stdout, _ = small_run
    for name in ("model.npz", "metrics.json", "metrics.csv", "curves.png", "confusion.png", "last.npz", "best.npz"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*")), "no temporary or probe files left"
    assert f"wrote {out}/" in stdout and "test accuracy" in stdout


def test_metrics_json_contents(small_run):
    m = read_metrics(small_run[0])
    assert m["config"]["subset"] == 2000 and m["config"]["hidden"] == [32] and m["config"]["epochs"] == 2
    assert [r["epoch"] for r in m["history"]] == [1, 2]
    for rec in m["history"]:
        for key in ("train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "lr", "time"):
            assert np.isfinite(rec[key]), key
        assert rec["valid_error"] == pytest.approx(1 - rec["valid_accuracy"])
    assert m["history"][1]["train_loss"] < m["history"][0]["train_loss"]
    assert 0.8 < m["test_accuracy"] <= 1
    assert m["test_error"] == pytest.approx(1 - m["test_accuracy"])
    assert 0 < m["test_loss"] < 1
    assert m["wall_time_s"] > 0
    assert m["status"] == "finished" and m["stop_reason"] is None
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 10_000
    assert np.trace(cm) / cm.sum() == pytest.approx(m["test_accuracy"])


def test_metrics_csv_matches_history(small_run):
    m = read_metrics(small_run[0])
    with open(small_run[0] / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(m["history"])
    for row, rec in zip(rows, m["history"]):
        assert int(row["epoch"]) == rec["epoch"]
        assert float(row["valid_loss"]) == pytest.approx(rec["valid_loss"])


@pytest.mark.parametrize("name", ["curves.png", "confusion.png"])
def test_plots_are_images(small_run, name):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    path = small_run[0] / name
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.shape[0] >= 200 and img.shape[1] >= 200
    assert img[..., :3].std() > 0.01, "not a blank image"


def test_progress_table_and_description_printed(small_run):
    stdout = small_run[1]
    assert "2,000 train / 1,000 valid / 10,000 test" in stdout
    assert "MLP 784-32-10" in stdout
    header = next(l for l in stdout.splitlines() if l.split()[:1] == ["epoch"])
    assert header.split() == ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "time"]


def test_quiet_prints_only_the_summary(hp_data, tmp_path):
    code, stdout, _ = run_main(["train", *SMALL, "--epochs", "1", "--quiet", "--out", tmp_path / "q",
                                "--schedule", "cosine"])
    assert code == 0
    assert stdout.splitlines()[0].startswith("test accuracy")
    assert len(stdout.splitlines()) == 2


# -- the model file ----------------------------------------------------------------------------------

def test_load_model_reproduces_the_trained_outputs(hp_data, tmp_path):
    from handprop.train.config import TrainConfig
    from handprop.train.metrics import predict
    from handprop.train.run import Run

    cfg = TrainConfig.create(subset=2000, valid=1000, hidden=[24, 16], epochs=1, activation="tanh")
    run = Run.create(cfg, tmp_path / "run", quiet=True)
    result = run.fit()
    expected = predict(run.model, run.data.x_test)

    model, normalize, meta, _ = load_model(tmp_path / "run" / "model.npz")
    assert meta["kind"] == "model" and meta["test_accuracy"] == result["test_accuracy"]
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    _, (x_test, _) = load_dataset("mnist")
    x = normalize(to_float_flat(x_test))
    model.eval()
    np.testing.assert_array_equal(model(x), expected)
    for (k, p), (k2, q) in zip(model.named_parameters(), run.model.named_parameters()):
        assert k == k2
        np.testing.assert_array_equal(p.data, q.data)


def test_model_npz_needs_no_pickle(small_run):
    with np.load(small_run[0] / "model.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    arrays, meta = load_arrays(small_run[0] / "model.npz")
    assert meta["spec"][0] == {"type": "Linear", "in_features": 784, "out_features": 32}
    assert arrays["normalize.mean"].shape == () or arrays["normalize.mean"].size == 1


# -- evaluate ---------------------------------------------------------------------------------------

def test_evaluate_reproduces_test_accuracy(small_run, hp_data):
    out = small_run[0]
    m = read_metrics(out)
    for target in (out, out / "model.npz"):
        code, stdout, stderr = run_main(["evaluate", target])
        assert code == 0, stderr
        line = next(l for l in stdout.splitlines() if "test accuracy" in l)
        acc = float(line.split("test accuracy")[1].split("%")[0])
        assert acc == pytest.approx(100 * m["test_accuracy"], abs=0.005)
        loss = float(line.split("test loss")[1].split()[0])
        assert loss == pytest.approx(m["test_loss"], abs=1e-4)


# -- non-finite guard -------------------------------------------------------------------------------

def test_huge_learning_rate_stops_cleanly(hp_data, tmp_path):
    out = tmp_path / "run"
    with np.errstate(all="ignore"):
        code, stdout, stderr = run_main(["train", *SMALL, "--epochs", "2", "--lr", "1e6", "--out", out])
    assert code == 1
    assert "Traceback" not in stderr
    line = next(l for l in stdout.splitlines() if l.startswith("stopped:"))
    assert "non-finite loss" in line and "epoch 1, batch" in line and "lower learning rate" in line
    m = read_metrics(out)
    assert m["status"] == "diverged" and "epoch 1, batch" in m["stop_reason"]
    arrays, _ = load_arrays(out / "model.npz")
    weights = [v for k, v in arrays.items() if k.startswith("model.")]
    assert weights and all(np.isfinite(w).all() for w in weights)


# -- user errors: one line on stderr, no traceback, exit 2 -----------------------------------------

def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args, needles", [
    (["--dataset", "cifar"], ["--dataset", "cifar"]),
    (["--lr", "-0.1"], ["--lr", "-0.1"]),
    (["--lr", "0"], ["--lr", "> 0"]),
    (["--lr", "nan"], ["--lr"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--batch-size", "12.5"], ["--batch-size", "12.5"]),
    (["--epochs", "two"], ["--epochs", "two"]),
    (["--epochs", "1.5"], ["--epochs", "1.5"]),
    (["--full"], ["--full", "epfl"]),
    (["--recipe", "fastai", "--full"], ["--full", "epfl"]),
    (["--recipe", "keras"], ["--recipe", "keras"]),
    (["--no-such-flag"], ["--no-such-flag"]),
])
def test_bad_train_arguments(args, needles, data_root, tmp_path):
    proc = run_child(["train", *args, "--out", tmp_path / "run"], data_root)
    line = _one_line_error(proc, *needles)
    assert re.match(r"handprop( train)?: error: ", line), line
    assert not (tmp_path / "run").exists()


def test_resume_without_checkpoint(data_root, tmp_path):
    proc = run_child(["train", "--resume", tmp_path], data_root)
    _one_line_error(proc, "cannot resume", str(tmp_path), "last.npz")


def test_unwritable_out_dir(data_root, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    proc = run_child(["train", *SMALL, "--epochs", "1", "--out", blocker / "run"], data_root)
    _one_line_error(proc, "cannot write to the output directory", str(blocker / "run"))
    assert blocker.read_text() == "not a directory"


def test_no_data_offline(tmp_path):
    empty = {d: tmp_path / d for d in ("data-dir", "handprop-data", "cache")}
    for d in empty.values():
        d.mkdir()
    proc = subprocess.run(handprop_cmd("train", "--offline", "--data-dir", empty["data-dir"], "--out", tmp_path / "run"),
                          env=child_env(empty["handprop-data"], XDG_CACHE_HOME=str(empty["cache"])),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()  # one line, however long
    assert line.startswith("handprop train: error: mnist: dataset not found"), line
    # One short line; `handprop info` shows every folder searched and every remedy (DESIGN.md).
    for needle in ("--data-dir", "--offline", "handprop info"):
        assert needle in line
    assert not (tmp_path / "run").exists()


def test_no_data_offline_evaluate(small_run, tmp_path):
    proc = run_child(["evaluate", "--offline", small_run[0]], tmp_path, XDG_CACHE_HOME=str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("handprop evaluate: error: mnist: dataset not found")


def test_evaluate_missing_file(data_root, tmp_path):
    _one_line_error(run_child(["evaluate", tmp_path / "nope.npz"], data_root), "nope.npz", "no such model file")
    _one_line_error(run_child(["evaluate", tmp_path], data_root), "model.npz")


def test_evaluate_not_a_model(data_root, tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 this is not a zip")
    _one_line_error(run_child(["evaluate", junk], data_root), "junk.npz", "not a readable .npz")


def test_no_command_prints_help():
    code, stdout, _ = run_main([])
    assert code == 2 and "train" in stdout and "evaluate" in stdout


def test_python_dash_m_and_version():
    proc = subprocess.run([sys.executable, "-m", "handprop", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("handprop ")


# -- info ----------------------------------------------------------------------------------------------

def test_info_prints_versions_and_dataset_locations(hp_data, capsys):
    import handprop

    from handprop import cli
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"handprop   {handprop.__version__}" in out
    assert f"numpy      {np.__version__}" in out
    assert "python" in out and "torch" in out
    mnist = next(l for l in out.splitlines() if l.strip().startswith("mnist:"))
    assert str(hp_data / "mnist") in mnist
    assert f"* {hp_data / 'mnist'}" in out
    assert "fashion-mnist:" in out


def test_data_dir_flag_trains_and_is_recorded(data_root, tmp_path):
    code, _, err = run_main(["train", *SMALL, "--epochs", "1", "--quiet", "--offline",
                             "--data-dir", data_root / "mnist", "--out", tmp_path / "run"])
    assert code == 0, err
    assert read_metrics(tmp_path / "run")["config"]["data_dir"] == str(data_root / "mnist")


def test_metrics_json_is_strict_json_even_when_losses_are_not_finite(hp_data, tmp_path):
    import json
    out = tmp_path / "run"
    with np.errstate(all="ignore"):
        run_main(["train", *SMALL, "--epochs", "1", "--lr", "1e6", "--quiet", "--out", out])
    strict = json.loads((out / "metrics.json").read_text(),
                        parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in metrics.json"))
    assert strict["status"] == "diverged"


@pytest.mark.parametrize("flags,needle", [
    (["--valid", "60000"], "--valid 60000 leaves no training images"),
    (["--seed", "-1"], "argument --seed: must be >= 0"),
])
def test_more_user_errors_are_one_line(hp_data, tmp_path, flags, needle):
    code, _, err = run_main(["train", *flags, "--out", tmp_path / "run"])
    assert code == 2 and err.count("\n") == 1 and needle in err, err


def test_resume_refuses_to_change_the_configuration(small_run, tmp_path):
    run_dir = small_run[0]
    code, _, err = run_main(["train", "--resume", run_dir, "--lr", "0.5", "--hidden", "7"])
    assert code == 2 and err.count("\n") == 1
    assert "only --epochs, --data-dir and --offline may change (drop --hidden, --lr)" in err
    code, _, err = run_main(["train", "--resume", run_dir, "--recipe", "epfl"])
    assert code == 2 and "(drop --recipe)" in err
    code, _, err = run_main(["train", "--resume", run_dir, "--full"])
    assert code == 2 and "drop --full" in err
    code, _, err = run_main(["train", "--resume", run_dir, "--full-batch", "--no-normalize"])
    assert code == 2 and "(drop --full-batch, --no-normalize)" in err
    code, _, err = run_main(["train", "--resume", run_dir, "--epochs", "1"])
    assert code == 2 and "--epochs 1 is fewer than the 2" in err and "this run has done already" in err


def test_a_value_error_inside_training_is_a_bug_not_a_user_error(hp_data, tmp_path, monkeypatch):
    from handprop.train.run import Run

    def broken_fit(self):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(Run, "fit", broken_fit)
    code, _, err = run_main(["train", *SMALL, "--epochs", "1", "--quiet", "--out", tmp_path / "run"])
    assert code == 1
    assert "Traceback" in err and "RuntimeError: internal error during training: operands could not" in err
    assert err.strip().splitlines()[-1].startswith("handprop train: internal error (a bug in handprop")


def test_an_os_error_is_one_line_and_exit_1(hp_data, tmp_path, monkeypatch):
    """A full disk or a vanished directory mid-run: not the user's typo (2), not a bug (traceback)."""
    import errno

    from handprop.train.run import Run

    def disk_full(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.out / "metrics.json"))

    monkeypatch.setattr(Run, "fit", disk_full)
    code, _, err = run_main(["train", *SMALL, "--epochs", "1", "--quiet", "--out", tmp_path / "run"])
    assert code == 1 and "Traceback" not in err
    assert err == f"handprop train: error: [Errno 28] No space left on device: '{tmp_path / 'run' / 'metrics.json'}'\n"
