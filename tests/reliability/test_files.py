"""The files a run writes and what a diverging run prints: metrics.csv with LF line endings
and its header row always; the non-finite guard's message and no NumPy RuntimeWarning lines."""
from __future__ import annotations

import csv

from handprop.train import Recorder
from train.helpers import SMALL, read_metrics

from .helpers import run

HEADER = "epoch,train_loss,train_accuracy,train_error,lr,valid_loss,valid_accuracy,valid_error,time,elapsed\n"


def test_metrics_csv_has_lf_line_endings_and_the_header(small_run):
    raw = (small_run[0] / "metrics.csv").read_bytes()
    assert b"\r" not in raw
    text = raw.decode()
    assert text.startswith(HEADER) and text.endswith("\n") and text.count("\n") == 3
    rows = list(csv.DictReader(text.splitlines()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert HEADER.strip().split(",") == Recorder("valid").fields()


def test_divergence_prints_the_guard_message_only(data_root, tmp_path):
    out = tmp_path / "run"
    proc = run(["train", *SMALL, "--epochs", "2", "--lr", "1e6", "--out", out], data_root)
    assert proc.returncode == 1, proc.stderr
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr == ""
    (stopped,) = [line for line in proc.stdout.splitlines() if line.startswith("stopped:")]
    assert "non-finite loss" in stopped and "epoch 1" in stopped
    assert read_metrics(out)["status"] == "diverged"
    # diverged in epoch 1: no epoch finished, yet metrics.csv has its header row
    assert (out / "metrics.csv").read_bytes() == HEADER.encode()
