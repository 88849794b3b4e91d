"""Resume equals uninterrupted: bit-identical weights and history, with shuffling, momentum
and a one-cycle schedule (the schedule and the data order depend on the global step and the
loader's generator, both of which the checkpoint must carry)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from handprop.serialize import load_arrays, save_arrays
from handprop.train import Callback
from handprop.train import run as run_mod

from .helpers import SMALL, assert_same_weights, read_metrics, run_main, strip_times

ONE_CYCLE = [*SMALL, "--schedule", "onecycle", "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.2",
             "--batch-size", "100", "--quiet"]


def interrupt_at(monkeypatch, epoch: int, batch: int) -> None:
    """Make the next ``handprop train`` raise KeyboardInterrupt (a Ctrl-C) at ``batch`` of ``epoch``
    (0-based), as the SIGINT of the subprocess test does, but deterministically."""
    real = run_mod.Learner

    class CtrlC(Callback):
        def before_batch(self):
            if self.learn.training and self.learn.epoch == epoch and self.learn.iter == batch:
                raise KeyboardInterrupt

    def learner(*args, **kwargs):
        monkeypatch.setattr(run_mod, "Learner", real)  # only the first run is interrupted
        return real(*args, **kwargs).add_callback(CtrlC())

    monkeypatch.setattr(run_mod, "Learner", learner)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, data_root):
    mp = pytest.MonkeyPatch()
    mp.setenv("HANDPROP_DATA", str(data_root))
    try:
        out = tmp_path_factory.mktemp("straight") / "run"
        code, _, err = run_main(["train", *ONE_CYCLE, "--epochs", "3", "--out", out])
    finally:
        mp.undo()
    assert code == 0, err
    return out


def test_interrupted_then_resumed_equals_uninterrupted(straight, hp_data, monkeypatch, tmp_path):
    out = tmp_path / "run"
    interrupt_at(monkeypatch, epoch=1, batch=7)
    code, _, err = run_main(["train", *ONE_CYCLE, "--epochs", "3", "--out", out])
    assert code == 130, err
    assert f"handprop train --resume {out}" in err
    arrays, meta = load_arrays(out / "last.npz")
    assert meta["kind"] == "checkpoint" and meta["epoch"] == 1 and meta["train_step"] == 20
    assert read_metrics(out)["status"] == "interrupted"
    assert not (out / "model.npz").exists()

    code, _, err = run_main(["train", "--resume", out, "--quiet"])
    assert code == 0, err
    assert_same_weights(straight / "model.npz", out / "model.npz")
    a, b = read_metrics(straight), read_metrics(out)
    assert strip_times(a["history"]) == strip_times(b["history"])
    assert [r["epoch"] for r in b["history"]] == [1, 2, 3]
    assert b["test_accuracy"] == a["test_accuracy"] and b["test_loss"] == a["test_loss"]
    assert b["status"] == "finished"


def test_resume_after_first_epoch_boundary(straight, hp_data, monkeypatch, tmp_path):
    """Interrupted at the very first batch of epoch 3: last.npz is the end of epoch 2."""
    out = tmp_path / "run"
    interrupt_at(monkeypatch, epoch=2, batch=0)
    assert run_main(["train", *ONE_CYCLE, "--epochs", "3", "--out", out])[0] == 130
    assert load_arrays(out / "last.npz")[1]["epoch"] == 2
    assert run_main(["train", "--resume", out, "--quiet"])[0] == 0
    assert_same_weights(straight / "model.npz", out / "model.npz")


def test_extend_a_finished_run_with_resume(hp_data, tmp_path):
    """Run 2 epochs, then ``--resume --epochs 3``: the same as 3 epochs straight (constant lr:
    a one-cycle schedule is planned for the total, so extending it changes the schedule)."""
    args = [*SMALL, "--schedule", "none", "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.05", "--quiet"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_main(["train", *args, "--epochs", "3", "--out", a])[0] == 0
    assert run_main(["train", *args, "--epochs", "2", "--out", b])[0] == 0
    code, _, err = run_main(["train", "--resume", b, "--epochs", "3", "--quiet"])
    assert code == 0, err
    assert_same_weights(a / "model.npz", b / "model.npz")
    ma, mb = read_metrics(a), read_metrics(b)
    assert strip_times(ma["history"]) == strip_times(mb["history"])
    assert mb["config"]["epochs"] == 3 and mb["epochs_done"] == 3


def test_resume_refuses_other_out_dir(small_run, tmp_path):
    code, _, err = run_main(["train", "--resume", small_run[0], "--out", tmp_path / "elsewhere"])
    assert code == 2
    assert "drop --out" in err and len(err.strip().splitlines()) == 1


def test_resume_refuses_a_model_file_posing_as_checkpoint(small_run, tmp_path):
    fake = tmp_path / "run"
    fake.mkdir()
    (fake / "last.npz").write_bytes((small_run[0] / "model.npz").read_bytes())
    code, _, err = run_main(["train", "--resume", fake])
    assert code == 2 and "not a handprop checkpoint" in err


def test_checkpoint_files_hold_optimizer_state_and_rng(small_run):
    arrays, meta = load_arrays(small_run[0] / "last.npz")
    assert meta["kind"] == "checkpoint" and meta["epoch"] == 2
    assert meta["rng"]["bit_generator"] == "PCG64"
    assert any(k.startswith("opt.state.") for k in arrays), "momentum buffers"
    assert len(meta["history"]) == 2
    model, _ = load_arrays(small_run[0] / "model.npz")
    for k, v in model.items():
        if k.startswith("model."):
            np.testing.assert_array_equal(arrays[k], v)
    best = load_arrays(small_run[0] / "best.npz")[1]
    losses = [r["valid_loss"] for r in read_metrics(small_run[0])["history"]]
    assert best["epoch"] == 1 + int(np.argmin(losses))


def test_a_run_saved_in_the_old_config_format_resumes_and_evaluates(small_run, hp_data, tmp_path):
    """Run directories written before TrainConfig hold a dict with ``full_batch`` beside
    ``batch_size`` and an ``init_std`` whatever the init: read as that run ran."""
    run_dir = tmp_path / "old"
    shutil.copytree(small_run[0], run_dir)
    for name in ("last.npz", "model.npz"):
        arrays, meta = load_arrays(run_dir / name)
        meta["config"].update(full_batch=False, init_std=0.01, schedule="none")  # (none: extendable)
        save_arrays(run_dir / name, arrays, meta)
    code, _, err = run_main(["evaluate", run_dir])
    assert code == 0, err
    code, _, err = run_main(["train", "--resume", run_dir, "--epochs", "3", "--quiet"])
    assert code == 0, err
    config = read_metrics(run_dir)["config"]
    assert config["epochs"] == 3 and config["init_std"] is None and "full_batch" not in config
    assert [r["epoch"] for r in read_metrics(run_dir)["history"]] == [1, 2, 3]
