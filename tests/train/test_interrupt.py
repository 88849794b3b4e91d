"""Ctrl-C: SIGINT to a real ``python -m handprop train`` child mid-training."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from handprop.serialize import load_arrays

from .helpers import SMALL, child_env, handprop_cmd, read_metrics, run_child

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _default_sigint() -> None:
    """In the child, before Python starts: SIGINT's default disposition, as under a terminal.
    A shell starts background jobs with SIGINT ignored, children inherit that, and Python then
    installs no KeyboardInterrupt handler: the suite run with ``&`` would see no Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_checkpoints_and_resume_completes(data_root, tmp_path):
    out = tmp_path / "run"
    epochs = 6
    proc = subprocess.Popen(handprop_cmd("train", *SMALL, "--epochs", epochs, "--out", out),
                            env=child_env(data_root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 60
        while not (out / "last.npz").exists():  # written after epoch 1
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "epoch 1 never finished"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    assert f"handprop train --resume {out}" in stderr
    assert "interrupted in epoch" in stderr
    arrays, meta = load_arrays(out / "last.npz")
    assert meta["kind"] == "checkpoint" and 1 <= meta["epoch"] < epochs
    assert all(np.isfinite(v).all() for k, v in arrays.items() if k.startswith("model."))
    assert read_metrics(out)["status"] == "interrupted"
    assert not list(out.glob(".*")), "no temporary files left behind"

    resumed = run_child(["train", "--resume", out, "--quiet"], data_root)
    assert resumed.returncode == 0, resumed.stderr
    m = read_metrics(out)
    assert m["status"] == "finished"
    assert [r["epoch"] for r in m["history"]] == list(range(1, epochs + 1))
    assert 0.5 < m["test_accuracy"] <= 1
    assert (out / "model.npz").is_file()
