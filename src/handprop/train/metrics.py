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


def confusion_matrix(output: np.ndarray, target: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    true = class_labels(target)
    pred = output.argmax(axis=1)
    c = num_classes or output.shape[1]
    return np.bincount(true * c + pred, minlength=c * c).reshape(c, c)
