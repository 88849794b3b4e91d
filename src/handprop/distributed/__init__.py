"""Data-parallel training over MPI: every process trains on its slice of each global batch and
the gradients are averaged with ``Allreduce``, so N processes take the steps one process would.

    mpirun -n 2 handprop train --batch-size 512

Pieces (see docs/distributed.md): :func:`connect` (is this an MPI job? the communicator),
:class:`ShardedLoader` (this process's slice of every global batch), :class:`DataParallel`,
:class:`DistributedRecorder` and :class:`CheckWeights` (Learner callbacks), :class:`StopSignals`
and :func:`abort_on_error` (Ctrl-C, SIGTERM, a failing process). mpi4py is imported only when a
communicator is made; ``import handprop`` never imports this package.
"""
from .buckets import GradientBuckets
from .callbacks import CheckWeights, DataParallel, DistributedRecorder
from .checksum import check_identical, checksums, describe_mismatch
from .communicator import Communicator, connect, load_mpi
from .environment import launched_rank, launched_size, wants_distributed
from .errors import MPI_EXTRA, DistributedError, MPIUnavailableError, RanksDivergedError, StopRequested
from .faults import StopSignals, abort_on_error, on_every_process, raised_everywhere, stopping_together
from .sharding import ShardedLoader, rank_bounds, shard_dataset

__all__ = [
    "MPI_EXTRA", "CheckWeights", "Communicator", "DataParallel", "DistributedError", "DistributedRecorder",
    "GradientBuckets", "MPIUnavailableError", "RanksDivergedError", "ShardedLoader", "StopRequested",
    "StopSignals", "abort_on_error", "check_identical", "checksums", "connect", "describe_mismatch",
    "launched_rank", "launched_size", "load_mpi", "on_every_process", "raised_everywhere", "rank_bounds",
    "shard_dataset", "stopping_together", "wants_distributed",
]
