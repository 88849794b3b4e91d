"""accuracy, error_rate and confusion_matrix on hand-made arrays."""
from __future__ import annotations

import numpy as np
import pytest

from handprop.train.metrics import accuracy, confusion_matrix, error_rate

# Rows' argmax: 0, 1, 2, 1, 0 ; targets 0, 1, 1, 1, 2  -> 3 of 5 right.
OUT = np.array([[0.9, 0.05, 0.05],
                [0.1, 0.8, 0.1],
                [0.2, 0.3, 0.5],
                [-1.0, 2.0, 0.0],
                [3.0, 1.0, 2.0]], dtype=np.float32)
Y = np.array([0, 1, 1, 1, 2])


def test_accuracy_and_error_rate():
    assert accuracy(OUT, Y) == pytest.approx(0.6)
    assert error_rate(OUT, Y) == pytest.approx(0.4)
    assert accuracy(OUT, np.argmax(OUT, axis=1)) == 1.0
    assert error_rate(OUT, (np.argmax(OUT, axis=1) + 1) % 3) == 1.0


def test_one_hot_targets_are_argmaxed():
    onehot = np.eye(3)[Y]
    assert accuracy(OUT, onehot) == pytest.approx(0.6)
    # the EPFL {-0.9, +0.9} coding too
    assert accuracy(OUT, np.where(onehot > 0, 0.9, -0.9)) == pytest.approx(0.6)


def test_accuracy_of_empty_batch_raises():
    with pytest.raises(ValueError, match="empty"):
        accuracy(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_confusion_matrix_rows_true_columns_predicted():
    m = confusion_matrix(OUT, Y)
    expected = np.array([[1, 0, 0],    # true 0: predicted 0
                         [0, 2, 1],    # true 1: predicted 1, 2, 1
                         [1, 0, 0]])   # true 2: predicted 0
    np.testing.assert_array_equal(m, expected)
    assert m.sum() == len(Y)
    assert np.trace(m) / m.sum() == pytest.approx(accuracy(OUT, Y))


def test_confusion_matrix_num_classes_and_one_hot():
    m = confusion_matrix(OUT, np.eye(3)[Y], num_classes=3)
    assert m.shape == (3, 3)
    np.testing.assert_array_equal(m.sum(axis=1), np.bincount(Y, minlength=3))
    np.testing.assert_array_equal(m.sum(axis=0), np.bincount(OUT.argmax(1), minlength=3))
