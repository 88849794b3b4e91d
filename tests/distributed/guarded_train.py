"""``handprop train`` (the real command line) for the mpirun tests, with test hooks.

- On every rank but 0, whatever writes a run's files raises (atomic writes, claiming or making a
  run directory): a rank other than 0 writing anything fails the run.
- With ``HANDPROP_TEST_PID_DIR`` set, each rank writes its process id to ``rank<r>.pid`` there
  (so a test can signal or kill one rank) and, when the command returns, its exit status to
  ``rank<r>.exit`` (a rank killed by the launcher writes none).
- With ``HANDPROP_TEST_STEP_SLEEP`` set, each training batch first sleeps that many seconds (so a
  signal sent after epoch 1 lands before the end; the computation is unchanged).
- With ``HANDPROP_TEST_NUDGE_STEP`` set, rank 1 nudges one weight after that training step (a
  divergence the periodic checksum must catch).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from mpi4py import MPI

import handprop.figures
import handprop.serialize
import handprop.train.rundir
import handprop.train.run
import handprop.train.stats
from handprop import cli
from handprop.train.learner import Learner


def _forbidden(*args, **kwargs):
    raise AssertionError(f"rank {MPI.COMM_WORLD.Get_rank()} tried to write {args[0] if args else ''}: "
                         "only rank 0 writes")


if __name__ == "__main__":
    rank = MPI.COMM_WORLD.Get_rank()
    if rank != 0:
        for module, name in ((handprop.serialize, "atomic_write"), (handprop.train.run, "atomic_write"),
                             (handprop.figures, "atomic_write"), (handprop.train.stats, "atomic_write"),
                             (handprop.train.run, "check_run_dir"),
                             (handprop.train.rundir, "claim_run_dir"), (handprop.train.rundir, "new_default_run_dir")):
            setattr(module, name, _forbidden)
    pid_dir = os.environ.get("HANDPROP_TEST_PID_DIR")
    if pid_dir:
        (Path(pid_dir) / f"rank{rank}.pid").write_text(str(os.getpid()))
    delay = float(os.environ.get("HANDPROP_TEST_STEP_SLEEP", 0))
    if delay:
        one_batch = Learner._one_batch
        Learner._one_batch = lambda learn: (time.sleep(delay), one_batch(learn))[1]
    nudge = int(os.environ.get("HANDPROP_TEST_NUDGE_STEP", 0))
    if nudge and rank == 1:
        step = Learner._one_batch

        def nudged(learn: Learner) -> None:
            step(learn)
            if learn.training and learn.train_step == nudge:
                next(iter(learn.model.parameters())).data.flat[0] += 1e-6
        Learner._one_batch = nudged
    code = cli.main(["train", *sys.argv[1:]])
    if pid_dir:
        (Path(pid_dir) / f"rank{rank}.exit").write_text(str(code))
    sys.exit(code)
