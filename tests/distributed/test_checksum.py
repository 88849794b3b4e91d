"""The weight checksums and the message naming the ranks and arrays that differ."""
from __future__ import annotations

import numpy as np

from handprop.distributed import checksums, describe_mismatch


def test_one_flipped_bit_changes_the_checksum_of_that_array_only():
    rng = np.random.default_rng(0)
    arrays = {"w": rng.standard_normal((30, 20)).astype(np.float32), "b": np.zeros(20, np.float32)}
    before = checksums(arrays)
    arrays["w"].view(np.uint32)[7, 3] ^= 1  # the last bit of one float32
    after = checksums(arrays)
    assert after[0] != before[0] and after[1] == before[1]


def test_the_checksum_sees_positions_not_just_values():
    a = np.arange(6, dtype=np.float32)
    assert checksums({"a": a})[0] != checksums({"a": a[::-1].copy()})[0]
    assert checksums({"a": a.reshape(2, 3).T})[0] == checksums({"a": np.ascontiguousarray(a.reshape(2, 3).T)})[0]


def test_identical_tables_mean_no_mismatch():
    table = np.array([[1, 2, 3]] * 4)
    assert describe_mismatch(table, ["a", "b", "c"]) is None


def test_the_mismatch_names_the_ranks_and_arrays():
    table = np.array([[1, 2, 3], [1, 2, 3], [1, 9, 3], [1, 2, 8]])
    assert describe_mismatch(table, ["w0", "b0", "w1"]) == "rank(s) 2, 3 differ from rank 0 in b0, w1"


def test_a_long_list_of_arrays_is_shortened():
    table = np.stack([np.zeros(8), np.ones(8)])
    message = describe_mismatch(table, [f"p{i}" for i in range(8)])
    assert message == "rank(s) 1 differ from rank 0 in p0, p1, p2, p3, p4 and 3 more"
