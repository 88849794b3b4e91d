"""The timing protocol: one untimed warm-up of each library, then runs alternating A B A B with
a pause between libraries so one's idle thread pool does not slow the other."""
from __future__ import annotations

import time
from collections.abc import Callable


def settle(seconds: float = 0.15) -> None:
    """Let the idle thread pool of the other library stop spinning before the next timed run."""
    time.sleep(seconds)


def alternate(fns: list[Callable[[], float]], repeats: int) -> list[list[float]]:
    """Run each fn once untimed, then ``repeats`` rounds A B A B ...; per-fn lists of times."""
    for fn in fns:
        fn()
        settle()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            times[k].append(fn())
            settle()
    return times


def alternate_fast(fns: list[Callable[[], float]], repeats: int) -> list[list[float]]:
    """A B A B for short runs: a short pause between libraries, none within."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            for _ in range(3):
                times[k].append(fn())
            settle(0.02)
    return times
