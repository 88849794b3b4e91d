"""The sharded loader, without MPI: N processes' slices of each step are the single-process batch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handprop.data import ArrayDataset, DataLoader
from handprop.distributed import ShardedLoader, rank_bounds, shard_dataset


def dataset(n: int) -> ArrayDataset:
    return ArrayDataset(np.arange(n, dtype=np.float32)[:, None], np.arange(n))


def rank_batches(n: int, batch: int | None, size: int, shuffle: bool = True, seed: int = 0, epochs: int = 1):
    """[rank][epoch*steps + step] -> labels (the example ids) of every process, as if N ran."""
    loaders = [ShardedLoader(dataset(n), batch, r, size, shuffle=shuffle, rng=seed) for r in range(size)]
    return [[yb for _ in range(epochs) for _, yb in loader] for loader in loaders]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 200), batch=st.integers(1, 64), size=st.integers(1, 5), seed=st.integers(0, 3))
def test_each_step_is_the_single_process_batch_split_over_ranks(n, batch, size, seed):
    if batch < size:
        return
    single = [yb for _, yb in DataLoader(dataset(n), batch, shuffle=True, rng=seed)]
    per_rank = rank_batches(n, batch, size, seed=seed)
    steps = {len(b) for b in per_rank}
    assert steps == {len(ShardedLoader(dataset(n), batch, 0, size))}, "every process takes the same steps"
    for step in range(steps.pop()):
        slices = [per_rank[r][step] for r in range(size)]
        assert all(len(s) >= 1 for s in slices)
        assert max(map(len, slices)) - min(map(len, slices)) <= 1, "slices differ by at most one example"
        np.testing.assert_array_equal(np.concatenate(slices), single[step])


@pytest.mark.parametrize("n, batch, size, dropped", [(100, 32, 2, 0), (97, 32, 2, 1), (98, 32, 2, 0), (97, 32, 4, 1),
                                                      (98, 32, 4, 2), (99, 32, 4, 3), (100, 32, 8, 4)])
def test_every_example_once_per_epoch_except_a_tail_smaller_than_the_ranks(n, batch, size, dropped):
    per_rank = rank_batches(n, batch, size)
    seen = np.concatenate([yb for batches in per_rank for yb in batches])
    assert len(seen) == len(set(seen.tolist())) == n - dropped, "disjoint, and complete but for the tail"
    assert len(ShardedLoader(dataset(n), batch, 0, size)) == -(-n // batch) - (dropped > 0)


def test_the_tail_is_split_when_every_rank_gets_one():
    per_rank = rank_batches(10, 4, 2)  # batches of 4, 4, 2: the last is split 1 + 1
    assert [len(b) for b in per_rank[0]] == [2, 2, 1] == [len(b) for b in per_rank[1]]


def test_reshuffled_every_epoch_from_the_shared_seed():
    a, b = rank_batches(64, 16, 2, epochs=2), rank_batches(64, 16, 2, epochs=2)
    for r in range(2):
        for x, y in zip(a[r], b[r]):
            np.testing.assert_array_equal(x, y)  # same seed, same batches
    first = np.concatenate(a[0][:4] + a[1][:4])
    second = np.concatenate(a[0][4:] + a[1][4:])
    assert sorted(first) == sorted(second) == list(range(64))
    assert not np.array_equal(np.concatenate(a[0][:4]), np.concatenate(a[0][4:])), "a new order each epoch"


def test_unshuffled_slices_are_views_in_dataset_order():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    loader = ShardedLoader(ArrayDataset(x, np.arange(10)), 4, 1, 2)
    batches = list(loader)
    assert [yb.tolist() for _, yb in batches] == [[2, 3], [6, 7], [9]]
    assert np.shares_memory(batches[0][0], x), "float32 slices are not copied"


def test_full_batch_splits_the_whole_dataset():
    per_rank = rank_batches(11, None, 3, shuffle=False)
    assert [b[0].tolist() for b in per_rank] == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9, 10]]


def test_a_global_batch_smaller_than_the_ranks_is_an_error():
    with pytest.raises(ValueError, match="global batch of 1 example.*2 processes"):
        ShardedLoader(dataset(10), 1, 0, 2)
    with pytest.raises(ValueError, match="global batch of 3 example.*4 processes"):
        ShardedLoader(dataset(3), None, 0, 4)


@pytest.mark.parametrize("rank, size", [(2, 2), (-1, 2), (0, 0), (0, 1.5)])
def test_bad_rank_or_size_is_an_error(rank, size):
    with pytest.raises(ValueError, match="expected 0 <= rank < size"):
        ShardedLoader(dataset(10), 4, rank, size)
    with pytest.raises(ValueError, match="shard_dataset: expected 0 <= rank < size"):
        shard_dataset(np.zeros((4, 1)), np.zeros(4), rank, size)


@given(n=st.integers(0, 1000), size=st.integers(1, 16))
def test_rank_bounds_tile_the_range(n, size):
    bounds = [rank_bounds(n, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(hi == lo for (_, hi), (lo, _) in zip(bounds, bounds[1:]))
    assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1


def test_shard_dataset_gives_every_example_to_one_rank():
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    shares = [shard_dataset(x, y, r, 3) for r in range(3)]
    assert np.concatenate([s.y for s in shares]).tolist() == list(range(10))
    assert [len(s) for s in shares] == [3, 3, 4]
    assert len(shard_dataset(x[:1], y[:1], 0, 2)) == 0, "a rank may get nothing to evaluate"


def test_an_augmentation_is_drawn_for_the_global_batch_so_every_process_stays_in_step():
    """``handprop train --augment`` data-parallel: each process's rows are those one process
    would have augmented, and every generator ends in the same state (the next epoch's order)."""
    def noise(rng):
        return lambda xb: xb + rng.standard_normal(xb.shape, dtype=np.float32)

    data = ArrayDataset(np.arange(60, dtype=np.float32).reshape(30, 2), np.arange(30))
    rng = np.random.default_rng(5)
    single = [(xb, yb) for _ in range(2) for xb, yb in DataLoader(data, 8, shuffle=True, rng=rng, transform=noise(rng))]
    rngs = [np.random.default_rng(5) for _ in range(3)]
    loaders = [ShardedLoader(data, 8, r, 3, shuffle=True, rng=rngs[r], transform=noise(rngs[r])) for r in range(3)]
    per_rank = [[batch for _ in range(2) for batch in loader] for loader in loaders]
    assert all(g.bit_generator.state == rng.bit_generator.state for g in rngs)
    for step, (xb, yb) in enumerate(single):
        np.testing.assert_array_equal(np.concatenate([per_rank[r][step][0] for r in range(3)]), xb)
        np.testing.assert_array_equal(np.concatenate([per_rank[r][step][1] for r in range(3)]), yb)
