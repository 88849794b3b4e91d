"""Run directories: a new one per run, an existing one never mixed into, one process at a time."""
from __future__ import annotations

import os
import re
import signal
import sys

import pytest

from handprop.serialize import load_arrays
from handprop.train import rundir
from handprop.train.rundir import LOCK_NAME, claim_run_dir, new_default_run_dir
from train.helpers import SMALL, read_metrics, run_main

from .helpers import LONG, listing, one_line_error, run, start, stop, wait_for_epoch

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX locks and signals")
TINY = ["--subset", "1000", "--valid", "500", "--hidden", "8", "--epochs", "1", "--quiet"]


# -- the default runs/<timestamp>-<n> ---------------------------------------------------------------

def test_runs_started_in_the_same_second_get_their_own_directories(data_root, tmp_path):
    procs = [start(["train", *TINY, "--seed", seed], data_root, cwd=tmp_path) for seed in (1, 2, 3)]
    try:
        results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    finally:
        for p in procs:
            stop(p)
    wrote = set()
    for seed, ((out, err), code) in zip((1, 2, 3), results):
        assert code == 0, err
        (where,) = re.findall(r"^wrote (runs/\S+)/:", out, re.M)
        wrote.add(where)
        run_dir = tmp_path / where
        assert read_metrics(run_dir)["config"]["seed"] == seed, "one run's metrics in another's directory"
        assert load_arrays(run_dir / "model.npz")[1]["config"]["seed"] == seed
        assert sorted(listing(run_dir)) == ["best.npz", "confusion.png", "curves.png", "last.npz",
                                            "metrics.csv", "metrics.json", "model.npz"]
    assert len(wrote) == 3
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(w.split("/")[1] for w in wrote)


def test_default_name_moves_on_past_names_taken(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir.time, "strftime", lambda fmt: "20250102-030405")
    (tmp_path / "20250102-030405-1").mkdir()  # another process was first
    (tmp_path / "20250102-030405-2").mkdir()
    assert new_default_run_dir(tmp_path) == tmp_path / "20250102-030405-3"
    assert new_default_run_dir(tmp_path) == tmp_path / "20250102-030405-4"
    assert (tmp_path / "20250102-030405-4").is_dir()
    assert not any((tmp_path / "20250102-030405-1").iterdir()), "a taken directory is left alone"


# -- --out: only a new or empty directory, unless resumed or overwritten ---------------------------

def test_out_onto_an_existing_run_is_refused(small_run, hp_data):
    before = listing(small_run[0])
    line = one_line_error(run_main(["train", *SMALL, "--epochs", "1", "--out", small_run[0]]),
                          f"--out {small_run[0]} is not empty", "--resume", "--overwrite")
    assert line.startswith("handprop train: error: ")
    assert listing(small_run[0]) == before, "the existing run is untouched"


def test_out_onto_a_directory_of_other_files_is_refused(hp_data, tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    one_line_error(run_main(["train", *TINY, "--out", tmp_path]), "is not empty (thesis.tex)")
    assert listing(tmp_path) == {"thesis.tex": b"precious"}


def test_out_onto_an_empty_directory_is_fine(hp_data, tmp_path):
    code, _, err = run_main(["train", *TINY, "--out", tmp_path])
    assert code == 0, err
    assert (tmp_path / "model.npz").is_file() and not list(tmp_path.glob(".*"))


def test_overwrite_replaces_the_run_files_and_nothing_else(hp_data, tmp_path):
    for name in rundir.RUN_FILES:
        (tmp_path / name).write_bytes(b"old run")
    (tmp_path / ".last.npz.999.abcd.part").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("mine")
    # a diverging run writes no checkpoints: an old last.npz or best.npz left here would be mixed in
    code, _, err = run_main(["train", *TINY, "--lr", "1e6", "--overwrite", "--out", tmp_path])
    assert code == 1, err
    files = listing(tmp_path)
    assert sorted(files) == ["confusion.png", "curves.png", "metrics.csv", "metrics.json", "model.npz", "notes.txt"]
    assert files["notes.txt"] == b"mine"
    assert all(v != b"old run" for v in files.values())
    assert read_metrics(tmp_path)["status"] == "diverged"


@pytest.mark.parametrize("args, needles", [
    (["--out", ""], ["argument --out", "expected a directory name, got ''"]),
    (["--resume", ""], ["argument --resume", "expected a directory name"]),
    (["--overwrite"], ["--overwrite applies to --out DIR"]),
])
def test_run_dir_flag_misuse(args, needles, hp_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(run_main(["train", *TINY, *args]), *needles)
    assert listing(tmp_path) == {}, "nothing created, not even runs/"


def test_overwrite_with_resume_is_refused(small_run):
    one_line_error(run_main(["train", "--resume", small_run[0], "--overwrite"]), "--overwrite", "drop one")


def test_a_run_failing_before_training_leaves_no_directory(hp_data, tmp_path, monkeypatch):
    from handprop.train import run as run_mod

    def ctrl_c_while_loading(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "prepare_data", ctrl_c_while_loading)
    code, _, err = run_main(["train", *TINY, "--out", tmp_path / "a" / "run"])
    assert code == 130 and err == "handprop train: interrupted\n"
    assert not (tmp_path / "a" / "run").exists()


# -- the lock: one process per run directory --------------------------------------------------------

def test_the_lock_refuses_a_second_claim_and_goes_with_its_holder(tmp_path):
    with claim_run_dir(tmp_path / "run") as out:
        assert (out / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        for resume in (False, True):
            with pytest.raises(ValueError, match=rf"run directory .* in use .*\(pid {os.getpid()}\)"):
                with claim_run_dir(out, resume=resume):
                    pass
        (out / "model.npz").write_bytes(b"x")
    assert listing(tmp_path / "run") == {"model.npz": b"x"}, "lock file removed on release"
    with claim_run_dir(tmp_path / "run", resume=True):
        pass


def test_a_second_process_on_a_live_run_is_refused_with_the_holders_pid(data_root, tmp_path):
    out = tmp_path / "run"
    holder = start(["train", *LONG, "--out", out], data_root)
    try:
        wait_for_epoch(holder, 2)  # epoch 1's last.npz is written
        holder.send_signal(signal.SIGSTOP)  # freeze the holder, so its files hold still
        before = listing(out)
        for args in (["train", *TINY, "--out", out], ["train", "--resume", out, "--quiet"],
                     ["train", *TINY, "--out", out, "--overwrite"]):
            one_line_error(run(args, data_root), f"run directory {out} is in use", f"(pid {holder.pid})")
        assert listing(out) == before, "the refused processes changed nothing"
        holder.send_signal(signal.SIGCONT)
        assert holder.poll() is None, "the holder runs on"
    finally:
        holder.send_signal(signal.SIGKILL)  # as the OOM killer would: no handler runs, the lock must go anyway
        holder.communicate()
    # The half-written checkpoint a SIGKILL may leave is a dead process's: the next claim removes it.
    (out / ".last.npz.424242.dead.part").write_bytes(b"half")
    done = load_arrays(out / "last.npz")[1]["epoch"]
    resumed = run(["train", "--resume", out, "--epochs", done + 1, "--quiet"], data_root)
    assert resumed.returncode == 0, resumed.stderr
    m = read_metrics(out)
    assert m["status"] == "finished" and len(m["history"]) == done + 1
    assert not list(out.glob(".*")), "no lock file, no temporaries"


def test_run_dir_creation_failure_is_one_line(hp_data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker, blocker / "run"):
        one_line_error(run_main(["train", *TINY, "--out", out]), f"cannot write to the output directory {out}")
    assert blocker.read_text() == "x"
