"""What a resume may do: not go back in epochs, not re-plan a learning-rate schedule; its clock
continues; a different BLAS thread count is warned about (no bit-identical promise then)."""
from __future__ import annotations

import pytest

from handprop.serialize import load_arrays
from train.helpers import SMALL, read_metrics, run_main

from .helpers import listing, one_line_error, run

CONSTANT = [*SMALL, "--schedule", "none", "--quiet"]


@pytest.fixture
def two_epochs(hp_data, tmp_path):
    """A finished 2-epoch run with a constant learning rate."""
    out = tmp_path / "run"
    assert run_main(["train", *CONSTANT, "--epochs", "2", "--out", out])[0] == 0
    return out


def test_fewer_epochs_than_done_is_refused(two_epochs):
    before = listing(two_epochs)
    one_line_error(run_main(["train", "--resume", two_epochs, "--epochs", "1"]),
                   "--epochs 1 is fewer than the 2 this run has done already", "give 2 or more")
    assert listing(two_epochs) == before


def test_changing_the_length_of_a_scheduled_run_is_refused(hp_data, tmp_path):
    out = tmp_path / "run"
    assert run_main(["train", *SMALL, "--schedule", "cosine", "--epochs", "2", "--quiet", "--out", out])[0] == 0
    before = listing(out)
    one_line_error(run_main(["train", "--resume", out, "--epochs", "3"]), "--epochs 3: this run's cosine "
                   "learning-rate schedule was planned for 2 in all", "start a new run with --epochs 3")
    one_line_error(run_main(["train", "--resume", out, "--epochs", "1"]), "fewer than the 2 this run has done")
    assert listing(out) == before
    code, _, err = run_main(["train", "--resume", out, "--epochs", "2", "--quiet"])  # the same length: fine
    assert code == 0, err


def test_elapsed_time_continues_across_a_resume(two_epochs):
    first = read_metrics(two_epochs)
    first_checkpoint = load_arrays(two_epochs / "last.npz")[1]["wall_time_s"]
    code, _, err = run_main(["train", "--resume", two_epochs, "--epochs", "3"])
    assert code == 0, err
    m = read_metrics(two_epochs)
    elapsed = [r["elapsed"] for r in m["history"]]
    assert elapsed[:2] == [r["elapsed"] for r in first["history"]]
    assert elapsed[2] >= elapsed[1] + m["history"][2]["time"] * 0.99, "the clock went on from epoch 2"
    assert m["wall_time_s"] > first["wall_time_s"]
    # (the first run's final wall time also counts its test evaluation and plots: compare checkpoints)
    assert load_arrays(two_epochs / "last.npz")[1]["wall_time_s"] > first_checkpoint


def test_checkpoints_record_blas_threads_and_a_different_count_is_warned(data_root, tmp_path):
    out = tmp_path / "run"
    first = run(["train", *CONSTANT, "--epochs", "1", "--out", out], data_root, OPENBLAS_NUM_THREADS="1")
    assert first.returncode == 0, first.stderr
    assert load_arrays(out / "last.npz")[1]["blas_threads"] == 1
    same = run(["train", "--resume", out, "--epochs", "2", "--quiet"], data_root, OPENBLAS_NUM_THREADS="1")
    assert same.returncode == 0 and same.stderr == ""
    other = run(["train", "--resume", out, "--epochs", "3", "--quiet", "--threads", "2"], data_root,
                OPENBLAS_NUM_THREADS="1")
    assert other.returncode == 0, other.stderr
    (warning,) = other.stderr.splitlines()
    assert "written with 1 BLAS thread(s), this process uses 2" in warning
    assert "not be bit-identical" in warning and "--threads 1" in warning
    assert load_arrays(out / "last.npz")[1]["blas_threads"] == 2
    assert read_metrics(out)["blas_threads"] == 2
