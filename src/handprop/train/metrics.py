"""Classification metrics on NumPy arrays: accuracy, error rate, confusion matrix."""
from __future__ import annotations

import numpy as np


def class_labels(target: np.ndarray) -> np.ndarray:
    """Integer labels from (N,) labels or (N, C) one-hot/score targets (argmax)."""
    target = np.asarray(target)
    return target.argmax(axis=1) if target.ndim == 2 else target


def correct_count(output: np.ndarray, target: np.ndarray) -> int:
    """How many rows of ``output`` have their argmax at the target class."""
    return int(np.count_nonzero(output.argmax(axis=1) == class_labels(target)))


def accuracy(output: np.ndarray, target: np.ndarray) -> float:
    """Fraction of rows whose argmax is the target class (the notebooks' ``accuracy``)."""
    n = len(output)
    if n == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    return correct_count(output, target) / n


def error_rate(output: np.ndarray, target: np.ndarray) -> float:
    """1 - accuracy."""
    return 1.0 - accuracy(output, target)


def predict(model, x: np.ndarray, batch_size: int = 10_000) -> np.ndarray:
    """``model`` outputs for ``x`` in eval mode (no caches kept), in chunks; the mode is restored."""
    training = model.training
    model.eval()
    try:
        return np.concatenate([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(training)


def test_report(model, loss, x: np.ndarray, targets: np.ndarray, num_classes: int) -> dict:
    """Loss, accuracy, error and confusion matrix of ``model`` on a held-out split (as saved in
    metrics.json and printed by ``handprop evaluate``)."""
    out = predict(model, x)
    matrix = confusion_matrix(out, targets, num_classes)
    acc = float(np.trace(matrix)) / len(out)
    return {"test_loss": loss(out, targets), "test_accuracy": acc, "test_error": 1 - acc,
            "confusion_matrix": matrix}


def confusion_matrix(output: np.ndarray, target: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    true = class_labels(target)
    pred = output.argmax(axis=1)
    c = num_classes or output.shape[1]
    return np.bincount(true * c + pred, minlength=c * c).reshape(c, c)
