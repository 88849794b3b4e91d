"""Stop signals: SIGTERM and SIGHUP behave like Ctrl-C (checkpoint, resume command, 128 + signal
number); a signal during the final evaluation, the plots or the checkpoint write itself still
leaves a whole checkpoint and the resume command."""
from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pytest

from handprop.serialize import load_arrays
from handprop.train import Callback, plots
from handprop.train import run as run_mod
from train.helpers import SMALL, read_metrics, run_main

from .helpers import LONG, listing, run, start, stop, wait_for_epoch

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
QUICK = [*SMALL, "--epochs", "2", "--quiet"]


def assert_interrupted_run(out, stderr: str, resume_line_first: str) -> int:
    """The state a stopped run must leave: whole checkpoint, status, no temporaries or lock; the
    last two stderr lines say what happened and how to resume. Returns the checkpoint's epoch."""
    assert "Traceback" not in stderr
    *_, what, how = stderr.strip().splitlines()
    assert what.startswith(resume_line_first), what
    assert how == f"resume with: handprop train --resume {out}"
    arrays, meta = load_arrays(out / "last.npz")
    assert meta["kind"] == "checkpoint"
    assert all(np.isfinite(v).all() for k, v in arrays.items() if k.startswith("model."))
    assert read_metrics(out)["status"] == "interrupted"
    assert not list(out.glob(".*")), "no temporaries, no lock file"
    return meta["epoch"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_is_handled_like_ctrl_c(sig, data_root, tmp_path):
    out = tmp_path / "run"
    proc = start(["train", *LONG, "--out", out], data_root)
    try:
        wait_for_epoch(proc, 2)  # the row is printed before the epoch's checkpoint: epoch 1's is written
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 128 + sig, stderr
    epoch = assert_interrupted_run(out, stderr, f"interrupted by {sig.name} in epoch ")
    assert 1 <= epoch < 200 and not (out / "model.npz").exists()
    if sig == signal.SIGTERM:  # the checkpoint is good to go on from
        resumed = run(["train", "--resume", out, "--epochs", epoch + 1, "--quiet"], data_root)
        assert resumed.returncode == 0, resumed.stderr
        m = read_metrics(out)
        assert m["status"] == "finished" and [r["epoch"] for r in m["history"]] == list(range(1, epoch + 2))


def test_a_signal_ignored_at_start_stays_ignored(data_root, tmp_path):
    """``nohup handprop train``: SIGHUP is ignored when the run starts and must stay so."""
    def nohup():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    out = tmp_path / "run"
    proc = start(["train", *SMALL, "--epochs", "12", "--out", out], data_root, preexec=nohup)
    try:
        wait_for_epoch(proc)
        proc.send_signal(signal.SIGHUP)
        _, stderr = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == 0, stderr
    assert read_metrics(out)["status"] == "finished" and (out / "model.npz").is_file()


def test_handlers_are_restored_after_a_run(hp_data, tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert run_main(["train", *SMALL, "--epochs", "1", "--quiet", "--out", tmp_path / "run"])[0] == 0
    assert {s: signal.getsignal(s) for s in before} == before


def _resume_and_check_complete(out, epochs: int = 2) -> dict:
    code, _, err = run_main(["train", "--resume", out, "--quiet"])
    assert code == 0, err
    m = read_metrics(out)
    assert m["status"] == "finished" and len(m["history"]) == epochs
    assert {"model.npz", "curves.png", "confusion.png"} <= set(listing(out))
    return m


@pytest.mark.parametrize("where", ["evaluation", "plots"])
def test_ctrl_c_after_training_still_checkpoints_and_says_how_to_resume(where, hp_data, tmp_path, monkeypatch):
    out = tmp_path / "run"

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:  # (undoing only this patch: hp_data's HANDPROP_DATA stays)
        patch.setattr(*((run_mod, "test_report") if where == "evaluation" else (plots, "plot_confusion")), ctrl_c)
        code, _, err = run_main(["train", *QUICK, "--out", out])
    assert code == 130
    epoch = assert_interrupted_run(out, err, "interrupted after training, during the final evaluation")
    assert epoch == 2, "the checkpoint holds the end of training"
    m = _resume_and_check_complete(out)
    assert m["wall_time_s"] > 0


def test_second_ctrl_c_during_the_checkpoint_write_cannot_cut_it(hp_data, tmp_path, monkeypatch):
    """Ctrl-C in epoch 2 starts the checkpoint write; a second, real Ctrl-C (SIGINT) arrives in
    the middle of it (inside ``np.savez``): the write completes, the resume command is printed."""
    out = tmp_path / "run"
    real_learner, real_savez, sent = run_mod.Learner, np.savez, []

    def savez_and_ctrl_c(file, **arrays):
        if not sent:
            sent.append(file)
            os.kill(os.getpid(), signal.SIGINT)
        return real_savez(file, **arrays)

    class CtrlCTwice(Callback):
        def before_batch(self):
            if self.learn.training and self.learn.epoch == 1 and self.learn.iter == 3:
                monkeypatch.setattr(np, "savez", savez_and_ctrl_c)
                raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "Learner", lambda *a, **k: real_learner(*a, **k).add_callback(CtrlCTwice()))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if run in the background
    try:
        code, _, err = run_main(["train", *QUICK, "--out", out])
    finally:
        signal.signal(signal.SIGINT, previous)
        monkeypatch.undo()
        monkeypatch.setenv("HANDPROP_DATA", str(hp_data))  # (undo() dropped hp_data's setting too)
    assert sent, "the second Ctrl-C was sent"
    assert code == 130, err
    assert assert_interrupted_run(out, err, "interrupted in epoch 2") == 1
    _resume_and_check_complete(out)
