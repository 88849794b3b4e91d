"""The ``cli`` extra (tqdm, matplotlib) is optional: without it ``handprop train`` finishes,
prints its result and one line naming the skipped files; the plots never touch the user's
matplotlib backend or pyplot's figures."""
from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from train.helpers import PNG_SIGNATURE, SMALL, read_metrics

from .helpers import env, listing, start, stop

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal is POSIX")
NO_EXTRAS = "import sys\nsys.modules['matplotlib'] = None  # `import matplotlib` fails, as if not installed\n" \
            "sys.modules['tqdm'] = None\n"
SKIPPED = "note: matplotlib is not installed: skipped curves.png and confusion.png " \
          "(pip install 'handprop[cli]' to get them)"


@pytest.fixture
def without_extras(tmp_path):
    """Environment entries that make the child's ``import matplotlib`` and ``import tqdm`` fail."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_EXTRAS)
    return {"PYTHONPATH": os.pathsep.join([str(site), env(None)["PYTHONPATH"]])}


def _check_finished_without_plots(out, stdout: str, stderr: str) -> None:
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == [SKIPPED]
    assert "test accuracy" in stdout and f"wrote {out}/: best.npz last.npz metrics.csv metrics.json model.npz" in stdout
    assert read_metrics(out)["status"] == "finished"
    assert sorted(listing(out)) == ["best.npz", "last.npz", "metrics.csv", "metrics.json", "model.npz"]


def test_without_matplotlib_and_tqdm_train_finishes(data_root, tmp_path, without_extras):
    out = tmp_path / "run"
    proc = start(["train", *SMALL, "--epochs", "2", "--out", out], data_root, **without_extras)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == 0, stderr
    _check_finished_without_plots(out, stdout, stderr)


def test_on_a_terminal_without_tqdm_plain_rows_replace_the_bars(data_root, tmp_path, without_extras):
    out = tmp_path / "run"
    leader, follower = pty.openpty()
    proc = start(["train", *SMALL, "--epochs", "2", "--out", out], data_root, stdout=follower, **without_extras)
    os.close(follower)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        stderr = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        os.close(leader)
        stop(proc)
    stdout = b"".join(chunks).decode().replace("\r\n", "\n")
    assert proc.returncode == 0, stderr
    rows = [line.split()[0] for line in stdout.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert rows == ["1", "2"], stdout
    _check_finished_without_plots(out, stdout, stderr)


PLOT_IN_A_NOTEBOOK = """
import sys
import matplotlib
matplotlib.use("svg")  # the user's choice (in a notebook: the inline backend)
import numpy as np
from handprop.train.plots import plot_confusion, plot_curves
history = [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "valid_loss": 1.1, "valid_accuracy": 0.4},
           {"epoch": 2, "train_loss": 0.5, "train_accuracy": 0.8, "valid_loss": 0.7, "valid_accuracy": 0.7}]
plot_curves(history, sys.argv[1] + "/curves.png")
plot_confusion(np.array([[5, 1], [2, 7]]), ["a", "b"], sys.argv[1] + "/confusion.png", "title")
print("pyplot imported:", "matplotlib.pyplot" in sys.modules)
import matplotlib.pyplot as plt
print("backend:", matplotlib.get_backend())
print("pyplot figures:", plt.get_fignums())
"""


def test_plots_leave_the_users_backend_and_pyplot_alone(tmp_path):
    proc = subprocess.run([sys.executable, "-c", PLOT_IN_A_NOTEBOOK, str(tmp_path)], env=env(None),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["pyplot imported: False", "backend: svg", "pyplot figures: []"]
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE
