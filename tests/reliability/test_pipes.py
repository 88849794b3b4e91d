"""A closed stdout (``handprop train | head``) never ends a run: training goes on to the end with
its output dropped, every file is written, and the exit status is the run's own."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from train.helpers import SMALL, read_metrics

from .helpers import LONG, listing, start, stop, wait_for_epoch

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
RUN_FILES = ["best.npz", "confusion.png", "curves.png", "last.npz", "metrics.csv", "metrics.json", "model.npz"]


def test_closed_stdout_the_run_goes_on_to_the_end(data_root, tmp_path):
    out = tmp_path / "run"
    # buffered, as a user's stdout is: what is still buffered must not fail again at exit
    proc = start(["train", *SMALL, "--epochs", "8", "--out", out], data_root, PYTHONUNBUFFERED="")
    try:
        first = proc.stdout.readline()  # as `| head -1` does: one line, then the reader goes
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        stop(proc)
    assert first.startswith("mnist: 2,000 train")
    assert proc.returncode == 0, stderr
    assert stderr.splitlines() == [f"handprop train: stdout was closed: training goes on with its output dropped; "
                                   f"every file is still written to {out}/"]
    m = read_metrics(out)
    assert m["status"] == "finished" and [r["epoch"] for r in m["history"]] == list(range(1, 9))
    assert sorted(listing(out)) == RUN_FILES, "every file, no temporaries or lock"


def test_closed_stdout_and_stderr_a_stop_signal_still_sets_the_status(data_root, tmp_path):
    """``handprop train 2>&1 | head -1`` and then a SIGTERM: nothing can be printed any more, yet
    the checkpoint is written and the status says the run was stopped (143), not 0."""
    out = tmp_path / "run"
    proc = start(["train", *LONG, "--out", out], data_root, stderr=subprocess.STDOUT)
    try:
        wait_for_epoch(proc, 2)
        proc.stdout.close()
        time.sleep(0.3)  # an epoch row or two meets the closed pipe
        assert proc.poll() is None, "a closed pipe ended the run"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 143
    m = read_metrics(out)
    assert m["status"] == "interrupted" and len(m["history"]) >= 2
    assert sorted(listing(out)) == ["best.npz", "last.npz", "metrics.csv", "metrics.json"]
