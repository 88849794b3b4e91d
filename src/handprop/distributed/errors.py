"""What can go wrong between processes, as exceptions the command line can print in one line."""
from __future__ import annotations

from ..errors import UsageError

#: How to install what distributed training needs (named in every "MPI is missing" message).
MPI_EXTRA = "pip install 'handprop[mpi]'"


class MPIUnavailableError(UsageError):
    """Distributed training was asked for, but mpi4py or an MPI library cannot be loaded."""


class DistributedError(RuntimeError):
    """The processes of a data-parallel run disagree or stopped answering; the run cannot go on."""


class RanksDivergedError(DistributedError):
    """The weights are no longer identical on every process (the periodic checksum caught it)."""


class StopRequested(KeyboardInterrupt):
    """Ctrl-C or SIGTERM reached the job; every process agreed to stop at the same step.

    A KeyboardInterrupt, so code that checkpoints on Ctrl-C does the same here.
    """
