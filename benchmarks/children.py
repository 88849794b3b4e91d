"""Fresh interpreters: which Python runs the child processes, and their median durations."""
from __future__ import annotations

import sys
import time

from handprop.bench.report import median


def python() -> str:
    return sys.executable


def child_seconds(code: str, runs: int) -> float:
    """Median of what ``code`` prints (a duration), each run in a fresh interpreter."""
    import subprocess
    values = []
    for _ in range(runs):
        res = subprocess.run([python(), "-c", code], capture_output=True, text=True, check=True)
        values.append(float(res.stdout.strip().splitlines()[-1]))
    return median(values)


def wall_seconds(cmd: list[str], runs: int) -> float:
    import subprocess
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        values.append(time.perf_counter() - t0)
    return median(values)
