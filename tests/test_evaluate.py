"""``handprop evaluate`` and its pieces (handprop.evaluate)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from handprop.evaluate import evaluate, format_confusion, resolve_model_path
from handprop.serialize import ModelFileError, build_model, save_model
from train.helpers import read_metrics, small_run_once


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, data_root):
    return small_run_once(tmp_path_factory, data_root)


def test_resolve_model_path(tmp_path):
    (tmp_path / "model.npz").write_bytes(b"x")
    assert resolve_model_path(tmp_path) == tmp_path / "model.npz"
    assert resolve_model_path(tmp_path / "model.npz") == tmp_path / "model.npz"
    with pytest.raises(ValueError, match="no such model file"):
        resolve_model_path(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="model.npz"):
        resolve_model_path(tmp_path / "sub")


def test_format_confusion_rows_and_recall():
    m = np.array([[8, 2], [1, 9]])
    text = format_confusion(m, ["zero", "one"]).splitlines()
    assert len(text) == 3
    assert text[0].split()[-3:] == ["zero", "one", "recall"]
    assert text[1].split() == ["zero", "8", "2", "80.00%"]
    assert text[2].split() == ["one", "1", "9", "90.00%"]


def test_format_confusion_empty_row_is_nan():
    text = format_confusion(np.array([[0, 0], [0, 5]]), ["a", "b"])
    assert "nan" in text.splitlines()[1]


def test_evaluate_prints_metrics_matching_the_run(small_run, data_root, capsys):
    out = small_run[0]
    assert evaluate(out, data_dir=data_root / "mnist", download=False) == 0
    stdout = capsys.readouterr().out
    m = read_metrics(out)
    acc = float(re.search(r"test accuracy ([\d.]+)%", stdout).group(1))
    err = float(re.search(r"test error ([\d.]+)%", stdout).group(1))
    assert acc == pytest.approx(100 * m["test_accuracy"], abs=0.005)
    assert err == pytest.approx(100 * m["test_error"], abs=0.005)
    assert "10,000 images" in stdout
    rows = stdout.strip().splitlines()[-10:]
    counts = np.array([[int(v) for v in r.split()[1:11]] for r in rows])
    np.testing.assert_array_equal(counts, np.array(m["confusion_matrix"]))


def test_evaluate_on_another_dataset_flag(small_run, data_root, capsys):
    """--dataset overrides the dataset named in the model file (same image size here), with a warning."""
    fashion = "/usr/share/datasets/fashion-mnist"
    import os
    if not os.path.isdir(fashion):
        pytest.skip("no Fashion-MNIST copy")
    assert evaluate(small_run[0], dataset="fashion-mnist", download=False) == 0
    captured = capsys.readouterr()
    assert "fashion-mnist test set" in captured.out
    assert float(re.search(r"test accuracy ([\d.]+)%", captured.out).group(1)) < 60, "an MNIST model on clothes"
    assert captured.err == f"warning: {small_run[0] / 'model.npz'} was trained on mnist; evaluating it on fashion-mnist\n"


def test_no_warning_on_the_training_dataset(small_run, data_root, capsys):
    assert evaluate(small_run[0], dataset="mnist", data_dir=data_root / "mnist", download=False) == 0
    assert capsys.readouterr().err == ""


def _model_file(path, n_in, n_out, fill=None):
    spec = [{"type": "Linear", "in_features": n_in, "out_features": n_out}]
    model = build_model(spec)
    if fill is not None:
        model[0].bias.data[...] = fill
    return save_model(path, model, spec, meta={"dataset": "mnist"})


@pytest.mark.parametrize("n_in, n_out, fill, message", [
    (784, 10, np.nan, "array 'model.layers.0.bias' holds NaN or infinite weights"),
    (784, 10, np.inf, "array 'model.layers.0.bias' holds NaN or infinite weights"),
    (784, 3, None, "scores 3 classes; mnist has 10"),
    (5, 10, None, re.escape("does not take mnist images: Linear(5 -> 10) expected input (..., 5), got (1, 784)")),
], ids=["nan", "inf", "3 classes", "5 inputs"])
def test_evaluate_refuses_a_model_that_cannot_be_evaluated(tmp_path, data_root, capsys, n_in, n_out, fill, message):
    path = _model_file(tmp_path / "model.npz", n_in, n_out, fill)
    with pytest.raises(ModelFileError, match=f"^{re.escape(str(path))}: {message}"):
        evaluate(path, data_dir=data_root / "mnist", download=False)
    assert capsys.readouterr().out == "", "nothing printed before the file is refused"
