"""The data both libraries train on: MNIST as the notebooks use it, else random arrays."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError


class Data:
    """The arrays both libraries train on, and where they came from."""

    def __init__(self, x_train: Any, y_train: Any, x_test: Any, y_test: Any, source: str):
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self.source = source


def load_data(data_dir: str | None = None, synthetic: bool = False) -> Data:
    """MNIST as the notebooks use it: 50,000 train / 10,000 test, float32 (N, 784) normalised
    with the training mean and std, labels int64. Random data of the same shape (said in
    ``source``) when MNIST is not found or ``synthetic``; invalid MNIST files are an error."""
    import numpy as np
    folder = None if synthetic else mnist_folder(data_dir)
    if folder is not None:
        from ..data import Normalize, load_dataset, to_float_flat
        (xtr, ytr), (xte, yte) = load_dataset("mnist", folder, download=False)
        x, xt = to_float_flat(xtr[:50000]), to_float_flat(xte)
        norm = Normalize().fit(x)
        norm(x, out=x)
        norm(xt, out=xt)
        return Data(x, ytr[:50000].astype(np.int64), xt, yte.astype(np.int64), f"MNIST ({folder})")
    rng = np.random.default_rng(0)
    return Data(rng.standard_normal((50000, 784), dtype=np.float32), rng.integers(0, 10, 50000),
                rng.standard_normal((10000, 784), dtype=np.float32), rng.integers(0, 10, 10000),
                "random (--synthetic)" if synthetic else
                "random: MNIST not found (set HANDPROP_DATA or pass --data-dir)")


def mnist_folder(data_dir: str | None) -> Path | None:
    """The folder holding the MNIST files: ``data_dir`` when given (a ValueError when they are not
    there: an explicit folder is never replaced by another), else the dataset search path
    (``$HANDPROP_DATA/mnist``, the cache); None when not found."""
    from ..data import find_dataset
    folder = find_dataset("mnist", data_dir)
    if folder is None and data_dir is not None:
        raise UsageError(f"--data-dir {data_dir}: the four MNIST IDX files are not there")
    return folder
