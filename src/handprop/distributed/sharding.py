"""Which examples each process trains on: its slice of every global batch.

One permutation per epoch is drawn from the shared seed, identically on every process, and cut
into global batches of ``batch_size`` exactly as a single process's DataLoader would; process
``r`` of ``N`` takes rows ``[r*b//N, (r+1)*b//N)`` of each batch of ``b`` examples. The union of
the slices of one step is the batch one process would train on, so averaging the gradients gives
that process's gradient (to float32 rounding), and every example is seen once per epoch.

Uneven splits: when ``N`` does not divide ``b``, the first slices are one example shorter; the
gradient averaging weighs each slice by its size, so nothing is biased. A last batch with fewer
examples than processes would leave some process without data, so every process drops it (at
most ``N - 1`` examples of an epoch, a different few each epoch since the order is reshuffled).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..data import ArrayDataset, DataLoader


def rank_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of ``n`` that process ``rank`` of ``size`` takes (sizes differ by at most 1)."""
    return rank * n // size, (rank + 1) * n // size


def _check_rank(rank: int, size: int, who: str) -> None:
    if not (isinstance(size, (int, np.integer)) and size >= 1 and isinstance(rank, (int, np.integer))
            and 0 <= rank < size):
        raise ValueError(f"{who}: expected 0 <= rank < size, got rank {rank!r} of size {size!r}")


class ShardedLoader:
    """This process's part of each global batch of ``DataLoader(dataset, batch_size, shuffle, rng=rng)``.

    ``batch_size`` is the global batch (None: the whole dataset, full-batch descent); ``rng``
    must be seeded identically on every process. Iterates ``(xb, yb)`` like a DataLoader;
    ``len()`` is the number of steps per epoch, the same on every process.

    ``transform`` (an augmentation drawing from ``rng``) is applied to the whole global batch,
    then this process's rows are taken: every process makes the same draws, so the generator
    stays identical everywhere (the next epoch's permutation too) and the slices are the rows a
    single process would have augmented the same way.
    """

    def __init__(self, dataset: Any, batch_size: int | None, rank: int, size: int, shuffle: bool = False,
                 rng: np.random.Generator | int | None = None,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None):
        _check_rank(rank, size, "ShardedLoader")
        self.batches = DataLoader(dataset, batch_size, shuffle=shuffle, rng=rng, transform=transform)
        self.rank, self.size = int(rank), int(size)
        self.global_batch = max(len(dataset), 1) if batch_size is None else int(batch_size)
        if self.global_batch < self.size:
            raise ValueError(f"ShardedLoader: a global batch of {self.global_batch} example(s) cannot be split "
                             f"over {self.size} processes (each needs at least one); use a larger batch "
                             "or fewer processes")

    @property
    def dataset(self) -> Any:
        return self.batches.dataset

    def __len__(self) -> int:
        tail = len(self.dataset) % self.global_batch
        return len(self.batches) - (0 < tail < self.size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        steps, n_examples = len(self), len(self.dataset)
        for step, index in enumerate(self.batches.batch_indices()):
            if step == steps:  # the dropped tail (its permutation was drawn all the same)
                break
            if self.batches.transform is not None:  # the whole batch, for the same draws everywhere
                xb, yb = self.batches.batch(index)
                lo, hi = rank_bounds(len(xb), self.rank, self.size)
                yield np.ascontiguousarray(xb[lo:hi]), yb[lo:hi]
                continue
            if isinstance(index, slice):  # unshuffled: a slice of the dataset, kept a slice (a view)
                start, stop = index.start, min(index.stop, n_examples)
                lo, hi = rank_bounds(stop - start, self.rank, self.size)
                part: slice | np.ndarray = slice(start + lo, start + hi)
            else:
                lo, hi = rank_bounds(len(index), self.rank, self.size)
                part = index[lo:hi]
            yield self.batches.batch(part)

    def __repr__(self) -> str:
        return f"ShardedLoader(rank {self.rank} of {self.size}, {self.batches!r})"


def shard_dataset(x: np.ndarray, y: np.ndarray, rank: int, size: int) -> ArrayDataset:
    """This process's contiguous share of an evaluation set (every example on exactly one process).

    Evaluation needs no step in lockstep, so the shares may give different numbers of batches;
    the metrics are summed over processes at the end of the pass.
    """
    _check_rank(rank, size, "shard_dataset")
    lo, hi = rank_bounds(len(x), rank, size)
    return ArrayDataset(x[lo:hi], y[lo:hi])
