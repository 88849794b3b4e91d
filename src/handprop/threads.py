"""BLAS threads: how many NumPy's BLAS uses, setting that number, and the default for training.

NumPy's OpenBLAS reads ``OPENBLAS_NUM_THREADS`` once, when it loads; threadpoolctl (a small
pure-Python dependency, imported only here) changes the number at run time, so a script can call
:func:`set_num_threads` after ``import numpy`` and ``handprop train --threads N`` can honour its flag.

Why training needs a policy: OpenBLAS splits every matrix product across its threads, waits for
the slowest, and keeps its idle threads spinning between products. When another process keeps a
core busy, one thread waits for its turn and every product waits for it: with a test run on one
of two cores, an epoch of ``handprop train`` took 11.6 s with two threads and 3.9 s with one. And
a small product gains nothing from threads even on a quiet machine, where the hand-offs cost as
much as they share. :func:`policy_threads` is the rule, measured by
``benchmarks/thread_policy.py`` (the figures are in its docstring): one thread when a forward
pass does fewer than :data:`MIN_PARALLEL_WORK` multiply-adds, or when other processes keep the
CPUs busy; every free CPU otherwise. :func:`apply_thread_policy` applies it at the start of training.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from .errors import UsageError

#: Multiply-adds of one forward pass (batch size x parameters) below which one BLAS thread is
#: at least as fast as two on a quiet machine (``benchmarks/thread_policy.py``).
MIN_PARALLEL_WORK = 40_000_000
#: How long :func:`busy_cpus` watches the CPUs (seconds): once per training run.
SAMPLE_SECONDS = 0.1
NO_THREADPOOLCTL = "threadpoolctl is not installed (pip install threadpoolctl)"

_limit: Any = None  # the threadpoolctl limit set last, kept for the life of the process


def blas_pool() -> dict[str, Any] | None:
    """threadpoolctl's record of NumPy's BLAS (its own copy first), or None when it cannot see one."""
    import numpy as np
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    pools.sort(key=lambda p: not str(p.get("filepath", "")).startswith(numpy_dir))
    return pools[0] if pools else None


def get_num_threads() -> int:
    """The number of threads NumPy's BLAS uses now (threadpoolctl, else the thread variables
    ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, else the usable CPUs)."""
    pool = blas_pool()
    if pool is not None:
        return int(pool["num_threads"])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").strip().isdigit():
            return int(os.environ[var])
    return usable_cpus()


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in NumPy's BLAS from now on (all its matrix products, this process).

    ValueError when ``n`` is not a positive integer, or when the number cannot change at run
    time (no threadpoolctl, or a BLAS without thread control): then set ``OPENBLAS_NUM_THREADS``
    before Python starts.
    """
    global _limit
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"set_num_threads: expected a positive integer, got {n!r}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise UsageError(f"cannot set the BLAS threads: {NO_THREADPOOLCTL}, or set OPENBLAS_NUM_THREADS={n} "
                         "before starting Python") from None
    if blas_pool() is None:
        raise UsageError("cannot set the BLAS threads: threadpoolctl finds no BLAS it controls in NumPy; "
                         f"set OPENBLAS_NUM_THREADS={n} (or your BLAS's variable) before starting Python")
    _limit = threadpool_limits(limits=n, user_api="blas")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from Linux's /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_cpus(seconds: float = SAMPLE_SECONDS) -> float:
    """How many CPUs other processes keep busy: the larger of the 1-minute load average and the
    CPU time used over the next ``seconds`` while this process sleeps (Linux), so a job that
    started seconds ago counts as much as one that has run for minutes."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    before = _cpu_times()
    if before is None:
        return load
    time.sleep(seconds)
    after = _cpu_times()
    total = after[1] - before[1]
    sampled = (after[0] - before[0]) / total * (os.cpu_count() or 1) if total > 0 else 0.0
    return max(load, sampled)


def policy_threads(work: float, busy: float, cpus: int) -> int:
    """The default thread count for a model whose forward does ``work`` multiply-adds, with other
    processes keeping ``busy`` of ``cpus`` CPUs busy: 1 below :data:`MIN_PARALLEL_WORK`, else the
    CPUs left free (rounded to the nearest, at least 1)."""
    if work < MIN_PARALLEL_WORK:
        return 1
    return max(1, min(cpus, int(cpus - busy + 0.5)))


@dataclass(frozen=True)
class ThreadChoice:
    """The BLAS threads a run uses and why (``str`` is the line ``handprop train`` prints)."""

    threads: int | None
    reason: str

    def __str__(self) -> str:
        count = "BLAS default threads" if self.threads is None else f"{thread_count(self.threads)} in BLAS"
        return f"threads: {count} ({self.reason})"


def thread_count(n: int) -> str:
    """'1 thread', '2 threads'."""
    return f"{n} thread{'' if n == 1 else 's'}"


def apply_thread_policy(threads: int | None = None, model: Any = None, batch_size: int | None = None) -> ThreadChoice:
    """Set NumPy's BLAS threads for training ``model`` on batches of ``batch_size``.

    ``threads`` (``--threads N``) wins; else :func:`policy_threads` decides from the model's size
    (batch size x parameters multiply-adds per forward) and how busy the machine is now. Without
    threadpoolctl the policy leaves the BLAS as it is (a line says so); an explicit ``threads``
    is then a ValueError (see :func:`set_num_threads`).
    """
    if threads is not None:
        set_num_threads(threads)
        return ThreadChoice(threads, "set by --threads / set_num_threads")
    if blas_pool() is None:
        return ThreadChoice(None, NO_THREADPOOLCTL if _threadpoolctl_missing() else "no BLAS thread control found")
    params = sum(p.data.size for p in model.parameters()) if model is not None else 0
    work = (batch_size or 1) * params
    busy, cpus = busy_cpus(), usable_cpus()
    n = policy_threads(work, busy, cpus)
    set_num_threads(n)
    if work < MIN_PARALLEL_WORK:
        why = f"{work / 1e6:.3g}M multiply-adds per forward, below {MIN_PARALLEL_WORK / 1e6:.3g}M"
    else:
        why = f"{work / 1e6:.3g}M multiply-adds per forward; {_demand(busy, cpus)}"
    return ThreadChoice(n, f"policy: {why}; --threads N to override")


def _demand(busy: float, cpus: int) -> str:
    return f"other processes want {busy:.1f} of {cpus} CPUs"


def _threadpoolctl_missing() -> bool:
    import importlib.util
    return importlib.util.find_spec("threadpoolctl") is None


def info_lines() -> list[str]:
    """``handprop info``'s lines: the BLAS, its threads now, and what the training policy would do."""
    pool = blas_pool()
    if pool is None:
        blas = f"not visible: {NO_THREADPOOLCTL}" if _threadpoolctl_missing() else "no thread control found"
        return [f"blas       {blas}; {get_num_threads()} threads (from the environment)"]
    busy, cpus = busy_cpus(), usable_cpus()
    large = policy_threads(MIN_PARALLEL_WORK, busy, cpus)
    return [f"blas       {pool.get('internal_api')} {pool.get('version')} ({pool.get('threading_layer')}, "
            f"{pool.get('architecture')}), {thread_count(pool['num_threads'])} now, {pool.get('filepath')}",
            f"threads    training policy: 1 BLAS thread below {MIN_PARALLEL_WORK / 1e6:.3g}M multiply-adds per "
            f"forward (batch x parameters), else the CPUs other processes leave free: now {_demand(busy, cpus)}, "
            f"so a large model gets {large}; --threads N or handprop.set_num_threads(n) overrides"]
