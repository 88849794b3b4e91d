"""``handprop.distributed.train`` for the mpirun tests, with two test hooks.

- On every rank but 0, the file writers raise: a rank other than 0 writing anything fails the run.
- With ``HANDPROP_TEST_PID_DIR`` set, each rank writes its process id to ``rank<r>.pid`` there
  (so a test can signal or kill one rank) and, when main returns, its exit status to ``rank<r>.exit``
  (a rank killed by the launcher writes none).
- With ``HANDPROP_TEST_STEP_SLEEP`` set, each training batch first sleeps that many seconds (so a
  signal sent after epoch 1 lands before the end; the computation is unchanged).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from mpi4py import MPI

import handprop.serialize
from handprop.distributed import train
from handprop.train.learner import Learner


def _forbidden(*args, **kwargs):
    raise AssertionError(f"rank {MPI.COMM_WORLD.Get_rank()} tried to write {args[0] if args else ''}: "
                         "only rank 0 writes")


if __name__ == "__main__":
    rank = MPI.COMM_WORLD.Get_rank()
    if rank != 0:
        handprop.serialize.atomic_write = train.atomic_write = _forbidden
    pid_dir = os.environ.get("HANDPROP_TEST_PID_DIR")
    if pid_dir:
        (Path(pid_dir) / f"rank{rank}.pid").write_text(str(os.getpid()))
    delay = float(os.environ.get("HANDPROP_TEST_STEP_SLEEP", 0))
    if delay:
        one_batch = Learner._one_batch
        Learner._one_batch = lambda learn: (time.sleep(delay), one_batch(learn))[1]
    code = train.main()
    if pid_dir:
        (Path(pid_dir) / f"rank{rank}.exit").write_text(str(code))
    sys.exit(code)
