"""Methodology guards: no early stopping on the test set; after early stopping, the saved model
and the reported test figures are those of the best validation epoch."""
from __future__ import annotations

import numpy as np
import pytest

from handprop.serialize import load_arrays
from train.helpers import SMALL, assert_same_weights, model_weights, read_metrics, run_main

from .helpers import listing, one_line_error

EARLY = [*SMALL, "--epochs", "20", "--patience", "2", "--schedule", "none", "--lr", "0.01"]


@pytest.mark.parametrize("flags", [["--valid", "0"], ["--recipe", "epfl"]])
def test_patience_without_validation_is_refused(flags, hp_data, tmp_path):
    one_line_error(run_main(["train", "--patience", "3", *flags, "--out", tmp_path / "run"]),
                   "--patience 3 needs a validation split", "test set")
    assert listing(tmp_path) == {}


def test_after_early_stopping_the_model_and_its_test_figures_are_the_best_epochs(hp_data, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_main(["train", *EARLY, "--out", out])
    assert code == 0, err
    m = read_metrics(out)
    losses = [r["valid_loss"] for r in m["history"]]
    best = 1 + int(np.argmin(losses))
    assert m["stop_reason"].startswith("early stopping") and best < m["epochs_done"] == len(losses) < 20
    assert m["model_epoch"] == best == load_arrays(out / "best.npz")[1]["epoch"]
    assert_same_weights(out / "best.npz", out / "model.npz")
    last = model_weights(out / "last.npz")
    assert any(not np.array_equal(v, last[k]) for k, v in model_weights(out / "model.npz").items())
    assert f"model.npz holds the weights of epoch {best} (best valid_loss); the test figures are theirs" in stdout
    code, ev, err = run_main(["evaluate", out])
    assert code == 0, err
    assert f"test accuracy {100 * m['test_accuracy']:.2f}%" in ev

    # Resuming a run that stopped early stops again at once: no more epochs, the same model.
    code, _, err = run_main(["train", "--resume", out, "--quiet"])
    assert code == 0, err
    again = read_metrics(out)
    assert len(again["history"]) == len(losses) and again["model_epoch"] == best
    assert again["test_accuracy"] == m["test_accuracy"]
    assert_same_weights(out / "best.npz", out / "model.npz")
