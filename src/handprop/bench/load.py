"""``--load``: a competing busy process, the neighbour a shared machine has (a test run, a second job).

The child multiplies two 512 x 512 float32 matrices in a loop on one BLAS thread: one CPU kept busy
with the same kind of work as the benchmark, started and stopped by the bench (and ending by
itself when the bench dies, so a crash leaves nothing spinning).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_SPIN = """
import os, sys
import numpy as np
parent = os.getppid()
a = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)
out = np.empty_like(a)
print("ready", flush=True)
while os.getppid() == parent:
    for _ in range(20):
        np.matmul(a, a, out=out)
"""


@contextmanager
def competing_process() -> Iterator[subprocess.Popen]:
    """Run the busy child for the duration of the ``with`` block (it is running when the block starts)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE, env=env, text=True)
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("bench --load: the competing process did not start")
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()
