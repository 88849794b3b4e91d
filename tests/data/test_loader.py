"""ArrayDataset and DataLoader: batch shapes and dtypes, one index per batch, seeded order."""
from __future__ import annotations

import numpy as np
import pytest

from handprop import _random
from handprop.data import ArrayDataset, DataLoader


def _data(n=10, dtype=np.float32):
    x = np.arange(n * 3, dtype=dtype).reshape(n, 3)
    return ArrayDataset(x, np.arange(n))


def test_array_dataset_indexing():
    ds = _data()
    assert len(ds) == 10
    x, y = ds[2]
    np.testing.assert_array_equal(x, [6, 7, 8])
    assert y == 2
    x, y = ds[1:3]
    assert x.shape == (2, 3) and list(y) == [1, 2]
    x, y = ds[np.array([4, 0])]
    np.testing.assert_array_equal(y, [4, 0])
    np.testing.assert_array_equal(x[:, 0], [12, 0])


def test_array_dataset_length_mismatch_names_both():
    with pytest.raises(ValueError, match="x has 4 samples but y has 3"):
        ArrayDataset(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="0-d"):
        ArrayDataset(np.float32(1), np.zeros(1))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8", np.float64(4)])
def test_batch_size_must_be_positive_int(bad):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_data(), batch_size=bad)


@pytest.mark.parametrize("n,bs,drop,expected", [(10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3),
                                                (9, 3, True, 3), (2, 5, True, 0), (0, 4, False, 0),
                                                (10, None, False, 1), (0, None, False, 0)])
def test_len_counts_batches(n, bs, drop, expected):
    loader = DataLoader(_data(n), batch_size=bs, drop_last=drop, shuffle=True, rng=0)
    assert len(loader) == expected
    batches = list(loader)
    assert len(batches) == expected
    if bs is not None and drop:
        assert all(len(xb) == bs for xb, _ in batches)


def test_sequential_batches_are_views_in_order():
    ds = _data(10)
    batches = list(DataLoader(ds, batch_size=4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    for xb, _ in batches:
        assert xb.dtype == np.float32 and xb.flags.c_contiguous and np.shares_memory(xb, ds.x)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), ds.x)


def test_non_float32_x_is_cast_per_batch():
    ds = ArrayDataset(np.arange(12, dtype=np.uint8).reshape(6, 2), np.arange(6))
    for xb, yb in DataLoader(ds, batch_size=4, shuffle=True, rng=1):
        assert xb.dtype == np.float32 and xb.flags.c_contiguous
        np.testing.assert_array_equal(xb, ds.x[yb].astype(np.float32))


def test_full_batch():
    ds = _data(7)
    (xb, yb), = DataLoader(ds, batch_size=None)
    np.testing.assert_array_equal(xb, ds.x)


def test_shuffle_is_a_permutation_keeping_pairs():
    ds = _data(50)
    seen = []
    for xb, yb in DataLoader(ds, batch_size=8, shuffle=True, rng=3):
        np.testing.assert_array_equal(xb[:, 0], yb * 3)  # x stays with its y
        seen.extend(yb)
    assert sorted(seen) == list(range(50)) and seen != list(range(50))


class _Recording(ArrayDataset):
    def __getitem__(self, index):
        self.calls.append(index)
        return super().__getitem__(index)


@pytest.mark.parametrize("shuffle,kind", [(True, np.ndarray), (False, slice)])
def test_one_index_operation_per_batch(shuffle, kind):
    ds = _Recording(np.zeros((100, 2), np.float32), np.zeros(100))
    ds.calls = []
    loader = DataLoader(ds, batch_size=16, shuffle=shuffle, rng=0)
    list(loader)
    assert len(ds.calls) == len(loader) == 7
    assert all(isinstance(c, kind) for c in ds.calls)


def _epochs(loader, n=3):
    return [np.concatenate([y for _, y in loader]) for _ in range(n)]


def test_seed_reproduces_the_sequence_of_epochs():
    a = _epochs(DataLoader(_data(40), batch_size=7, shuffle=True, rng=123))
    b = _epochs(DataLoader(_data(40), batch_size=7, shuffle=True, rng=123))
    c = _epochs(DataLoader(_data(40), batch_size=7, shuffle=True, rng=124))
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], a[1])  # each epoch draws a fresh permutation
    assert not np.array_equal(a[0], c[0])


def test_generator_is_used_as_given():
    gen = np.random.default_rng(5)
    (first,) = _epochs(DataLoader(_data(30), batch_size=30, shuffle=True, rng=gen), 1)
    np.testing.assert_array_equal(first, np.random.default_rng(5).permutation(30))


def test_default_rng_follows_manual_seed():
    loader = DataLoader(_data(30), batch_size=4, shuffle=True)
    _random.manual_seed(7)
    a = _epochs(loader, 2)
    _random.manual_seed(7)
    b = _epochs(loader, 2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
