"""Mini-batches from in-memory arrays: ArrayDataset and a seeded, vectorised DataLoader."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._random import resolve_rng


class ArrayDataset:
    """Pairs ``x[i], y[i]`` of two arrays of equal length; indexing by int, slice or index
    array returns ``(x[index], y[index])`` in one NumPy indexing operation per array."""

    def __init__(self, x: Any, y: Any) -> None:
        self.x, self.y = np.asarray(x), np.asarray(y)
        if self.x.ndim == 0 or self.y.ndim == 0:
            raise ValueError("ArrayDataset needs arrays of shape (N, ...), got a 0-d array")
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} samples but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.x[index], self.y[index]

    def __repr__(self) -> str:
        return (f"ArrayDataset({len(self)} samples, x: {self.x.dtype}{list(self.x.shape[1:])}, "
                f"y: {self.y.dtype}{list(self.y.shape[1:])})")


class DataLoader:
    """Iterate over ``dataset`` in batches ``(xb, yb)``, ``xb`` a contiguous float32 array.

    - ``batch_size``: a positive int, or ``None`` for one batch holding everything
      (full-batch gradient descent).
    - ``shuffle``: each epoch (each ``iter()``) draws a fresh permutation from ``rng`` and
      takes every batch with one fancy index; without it batches are plain slices (views when
      ``x`` is already float32).
    - ``drop_last``: skip the final, smaller batch.
    - ``rng``: a ``numpy.random.Generator`` (used as is), an int seed (a private generator,
      so the sequence of epochs is reproducible), or None (handprop's default generator,
      looked up at each epoch so ``handprop._random.manual_seed`` takes effect).

    - ``transform``: applied to each ``xb`` (e.g. :class:`handprop.data.augment.Augment`, drawing
      from the same generator, so a run's batches stay reproducible).

    ``len(loader)`` is the number of batches per epoch. ``x`` of another dtype is cast per
    batch; labels are returned as stored.
    """

    def __init__(self, dataset: Any, batch_size: int | None = 64, shuffle: bool = False,
                 drop_last: bool = False, rng: np.random.Generator | int | None = None,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, (int, np.integer))
                                       or batch_size <= 0):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self._rng = None if rng is None else resolve_rng(rng)
        self.transform = transform

    def _size(self) -> int:
        return max(len(self.dataset), 1) if self.batch_size is None else int(self.batch_size)

    def __len__(self) -> int:
        n, size = len(self.dataset), self._size()
        return n // size if self.drop_last else -(-n // size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for index in self.batch_indices():
            yield self.batch(index)

    def batch(self, index: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The examples at ``index`` as a float32 C-contiguous ``xb`` (transformed) and ``yb``."""
        xb, yb = self.dataset[index]
        xb = np.ascontiguousarray(xb, dtype=np.float32)
        return (xb if self.transform is None else self.transform(xb)), yb

    def batch_indices(self) -> Iterator[slice | np.ndarray]:
        """The dataset index of each batch of one epoch (drawing its permutation when shuffling):
        a slice in dataset order, else a slice of the permutation."""
        size = self._size()
        order = None
        if self.shuffle:
            rng = resolve_rng(None) if self._rng is None else self._rng
            order = rng.permutation(len(self.dataset))
        for start in range(0, len(self) * size, size):
            yield slice(start, start + size) if order is None else order[start:start + size]

    def __repr__(self) -> str:
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")
