"""handprop.threads: reading and setting NumPy's BLAS threads, the training policy, its absence."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import handprop
from handprop import nn, threads
from handprop.bench.load import competing_process


@pytest.fixture(autouse=True)
def _restore_threads():
    """Every test leaves NumPy's BLAS with the threads it found."""
    before = threads.get_num_threads()
    yield
    threads.set_num_threads(before)


@pytest.fixture
def no_threadpoolctl(monkeypatch):
    """As if threadpoolctl were not installed (its import raises ImportError)."""
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    monkeypatch.setattr(threads, "_threadpoolctl_missing", lambda: True)


def _mlp(*sizes: int) -> nn.Sequential:
    return nn.Sequential(*[nn.Linear(a, b, rng=0) for a, b in zip(sizes, sizes[1:])])


def test_set_num_threads_changes_what_numpys_blas_uses():
    for n in (1, 2):
        handprop.set_num_threads(n)
        assert handprop.get_num_threads() == n == threads.blas_pool()["num_threads"]
    a = np.ones((300, 300), np.float32)
    np.testing.assert_array_equal(a @ a, np.full((300, 300), 300, np.float32))  # still computes


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_set_num_threads_rejects_what_is_not_a_positive_integer(bad):
    with pytest.raises(ValueError, match="expected a positive integer"):
        threads.set_num_threads(bad)


@pytest.mark.parametrize("work, busy, cpus, expected", [
    (threads.MIN_PARALLEL_WORK - 1, 0.0, 8, 1),  # small products: one thread even on a quiet machine
    (threads.MIN_PARALLEL_WORK, 0.0, 2, 2),      # large and quiet: every CPU
    (threads.MIN_PARALLEL_WORK, 0.4, 2, 2),      # a little background work does not count
    (threads.MIN_PARALLEL_WORK, 1.0, 2, 1),      # one busy neighbour on two CPUs: one thread
    (threads.MIN_PARALLEL_WORK, 3.0, 8, 5),      # the CPUs left free
    (threads.MIN_PARALLEL_WORK, 12.0, 8, 1),     # oversubscribed: never fewer than one
])
def test_policy_threads(work, busy, cpus, expected):
    assert threads.policy_threads(work, busy, cpus) == expected


def test_the_policy_gives_a_small_model_one_thread_whatever_the_load(monkeypatch):
    monkeypatch.setattr(threads, "busy_cpus", lambda *a: 0.0)
    threads.set_num_threads(2)
    choice = threads.apply_thread_policy(None, _mlp(784, 50, 10), 64)
    assert choice.threads == 1 == threads.get_num_threads()
    assert str(choice).startswith("threads: 1 thread in BLAS (policy: ") and "below" in str(choice)


@pytest.mark.parametrize("busy, expected", [(0.0, None), (1.5, 1)])
def test_the_policy_gives_a_large_model_the_free_cpus(monkeypatch, busy, expected):
    monkeypatch.setattr(threads, "busy_cpus", lambda *a: busy)
    expected = expected or threads.usable_cpus()
    choice = threads.apply_thread_policy(None, _mlp(784, 1024, 1024, 10), 512)
    assert choice.threads == expected == threads.get_num_threads()
    assert f"other processes want {busy:.1f} of {threads.usable_cpus()} CPUs" in choice.reason


def test_an_explicit_thread_count_wins_over_the_policy(monkeypatch):
    monkeypatch.setattr(threads, "busy_cpus", lambda *a: pytest.fail("the policy must not be consulted"))
    choice = threads.apply_thread_policy(2, _mlp(784, 50, 10), 64)
    assert choice.threads == 2 == threads.get_num_threads() and "--threads" in str(choice)


def test_busy_cpus_sees_a_process_that_started_a_moment_ago(monkeypatch):
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # the sample alone must see it
    with competing_process():
        assert threads.busy_cpus() >= 0.5


def test_busy_cpus_falls_back_to_the_load_average_without_proc_stat(monkeypatch):
    monkeypatch.setattr(threads, "_cpu_times", lambda: None)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.25, 0.0, 0.0))
    assert threads.busy_cpus() == 3.25


def test_without_threadpoolctl_the_policy_leaves_the_blas_and_says_why(no_threadpoolctl):
    choice = threads.apply_thread_policy(None, _mlp(784, 50, 10), 64)
    assert choice.threads is None and "threadpoolctl is not installed" in str(choice)
    with pytest.raises(ValueError, match="threadpoolctl is not installed.*OPENBLAS_NUM_THREADS=3"):
        threads.apply_thread_policy(3)
    assert "threadpoolctl is not installed" in threads.info_lines()[0]


def test_without_threadpoolctl_the_count_comes_from_the_environment(no_threadpoolctl, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert threads.get_num_threads() == 3


def test_info_shows_the_blas_its_threads_and_the_policy(capsys):
    from handprop.info import print_info
    threads.set_num_threads(1)
    print_info()
    out = capsys.readouterr().out
    blas = next(line for line in out.splitlines() if line.startswith("blas "))
    policy = next(line for line in out.splitlines() if line.startswith("threads "))
    assert "openblas" in blas and ", 1 thread now," in blas
    assert f"below {threads.MIN_PARALLEL_WORK / 1e6:.3g}M multiply-adds" in policy and "--threads N" in policy
