"""Was this process started by an MPI launcher (``mpirun``, ``mpiexec``, ``srun``), and as one of how many?

Launchers tell their processes through environment variables; reading them needs no MPI library,
so a plain ``handprop train`` never imports mpi4py. The number read here is a hint: once MPI is
initialised, :func:`handprop.distributed.connect` checks that MPI agrees (a mismatch means mpi4py
talks to another MPI than the launcher's, and every process would train alone).
"""
from __future__ import annotations

import os
from collections.abc import Mapping

#: Where each launcher puts the number of processes, checked in this order.
SIZE_VARIABLES = (
    "OMPI_COMM_WORLD_SIZE",  # Open MPI's mpirun / mpiexec
    "PMI_SIZE",              # MPICH and Intel MPI (Hydra)
    "MV2_COMM_WORLD_SIZE",   # MVAPICH
    "SLURM_STEP_NUM_TASKS",  # srun (set for the tasks of a job step, not in the batch script)
)


#: Where each launcher puts this process's rank, in the order of :data:`SIZE_VARIABLES`.
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK", "SLURM_PROCID")


def launched_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank as its launcher says (0 when not started by one): which process
    prints an error every process raised alike, before MPI is initialised."""
    env = os.environ if environ is None else environ
    for name in RANK_VARIABLES:
        if env.get(name, "").strip().isdigit():
            return int(env[name])
    return 0


def launched_size(environ: Mapping[str, str] | None = None) -> tuple[int, str] | None:
    """(number of processes, the variable saying so) when started by a launcher, else None."""
    env = os.environ if environ is None else environ
    for name in SIZE_VARIABLES:
        text = env.get(name)
        if text is None:
            continue
        if not text.strip().isdigit() or int(text) < 1:
            raise ValueError(f"environment variable {name}={text!r}: expected a positive number of processes")
        return int(text), name
    return None


def wants_distributed(flag: bool | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to train data-parallel: ``flag`` (``--distributed`` / ``--no-distributed``) when
    given, else whether a launcher started more than one process."""
    if flag is not None:
        return bool(flag)
    found = launched_size(environ)
    return found is not None and found[0] > 1


def launcher_command(size: int, environ: Mapping[str, str] | None = None) -> str:
    """How this job was started, for messages: ``srun -n N`` under SLURM, else ``mpirun -n N``
    (empty for a single process not started by a launcher)."""
    env = os.environ if environ is None else environ
    if size == 1 and launched_size(env) is None:
        return ""
    return f"{'srun' if 'SLURM_STEP_NUM_TASKS' in env else 'mpirun'} -n {size}"
