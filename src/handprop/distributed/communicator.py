"""The few MPI operations data-parallel training needs, on NumPy buffers.

Only mpi4py's uppercase, buffer-based calls are used (``Allreduce``, ``Allgather``): the arrays
travel as raw memory, nothing is pickled. mpi4py is imported by :func:`load_mpi` on first use,
never by ``import handprop``.

A watchdog thread ends the job when this process has waited longer than ``timeout`` seconds in
one collective call: a peer that died without the launcher noticing (``srun`` without
``--kill-on-bad-exit``) or that hangs would otherwise keep every other process waiting forever.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import UsageError
from .environment import launched_size, wants_distributed
from .errors import MPI_EXTRA, DistributedError, MPIUnavailableError


def load_mpi() -> Any:
    """mpi4py's ``MPI`` module (initialising MPI), or MPIUnavailableError naming the ``mpi`` extra."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as e:  # no mpi4py, or no MPI library for it
        raise MPIUnavailableError(f"distributed training needs mpi4py and an MPI library: "
                                  f"{MPI_EXTRA} ({type(e).__name__}: {e})") from None
    return MPI


class Communicator:
    """``rank`` and ``size`` of this process in the job, ``local_size`` (how many of its processes
    run on this machine and share its cores), and the collectives training uses.

    Every collective must be called by every process, in the same order, with buffers of the
    same size and dtype (MPI's rule; the training callbacks guarantee it).
    """

    def __init__(self, comm: Any = None, timeout: float = 300.0):
        if not timeout > 0:
            raise ValueError(f"Communicator: timeout must be > 0 seconds, got {timeout!r}")
        self.MPI = load_mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = float(timeout)
        self._waiting_since: float | None = None  # set while inside a collective call
        self._waiting_in = ""
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)  # (collective: once, here)
        self.local_size = node.Get_size()
        node.Free()
        threading.Thread(target=self._watch, name="handprop-mpi-watchdog", daemon=True).start()

    @property
    def is_root(self) -> bool:
        """Rank 0: the one process that prints and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Communicator(rank {self.rank} of {self.size})"

    # -- collectives ---------------------------------------------------------------------------
    def allreduce(self, buffer: np.ndarray) -> np.ndarray:
        """Replace ``buffer`` (contiguous) by its element-wise sum over all processes, in place."""
        with self._waiting("Allreduce"):
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        return buffer

    def allgather(self, values: np.ndarray) -> np.ndarray:
        """Every process's ``values`` (same shape and dtype everywhere), stacked: (size, *shape)."""
        values = np.ascontiguousarray(values)
        out = np.empty((self.size, *values.shape), dtype=values.dtype)
        with self._waiting("Allgather"):
            self.comm.Allgather(values, out)
        return out

    def broadcast_text(self, text: str | None) -> str:
        """Rank 0's ``text`` on every process (the others pass None): a length, then the bytes."""
        data = np.frombuffer((text or "").encode(), dtype=np.uint8) if self.is_root else None
        length = np.array([0 if data is None else len(data)], dtype=np.int64)
        with self._waiting("Bcast"):
            self.comm.Bcast(length, root=0)
            buffer = data.copy() if data is not None else np.empty(int(length[0]), dtype=np.uint8)
            self.comm.Bcast(buffer, root=0)
        return buffer.tobytes().decode()

    def barrier(self) -> None:
        """Wait until every process got here (or the watchdog ends the job after ``timeout``)."""
        with self._waiting("Barrier"):
            self.comm.Barrier()

    def agree(self, failed: bool) -> int:
        """How many processes passed ``failed`` True (one tiny Allreduce)."""
        return int(self.allreduce(np.array([int(failed)], dtype=np.int64))[0])

    def threads_per_process(self) -> int:
        """BLAS threads for each process so that those of one machine share its CPUs (at least 1)."""
        from ..threads import usable_cpus
        return max(1, usable_cpus() // self.local_size)

    def abort(self, code: int = 1) -> None:
        """End every process of the job now (MPI_Abort): what a failing process must do, since
        the others would otherwise wait for it in their next collective call."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)

    # -- rank 0 only ---------------------------------------------------------------------------
    def root_only(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` on rank 0; elsewhere a function that does nothing (for writers and printers)."""
        return fn if self.is_root else _do_nothing

    # -- watchdog ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _waiting(self, what: str) -> Iterator[None]:
        """Within: this process is inside the collective ``what`` (the watchdog's clock runs)."""
        self._waiting_in = what
        self._waiting_since = time.monotonic()
        try:
            yield
        finally:
            self._waiting_since = None

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, self.timeout / 4))
            since = self._waiting_since
            if since is not None and time.monotonic() - since > self.timeout:
                print(f"handprop: rank {self.rank} of {self.size} waited more than {self.timeout:g} s in "
                      f"{self._waiting_in} for the other processes (one died or hangs); ending the job",
                      file=sys.stderr, flush=True)
                self.abort(1)


def _do_nothing(*args: Any, **kwargs: Any) -> None:
    return None


def connect(flag: bool | None = None, timeout: float = 300.0) -> Communicator | None:
    """The job's communicator when training data-parallel (see :func:`wants_distributed`), else None.

    Raises MPIUnavailableError without mpi4py; UsageError when ``--distributed`` is given to a
    process no launcher started (as PyTorch's ``init_process_group`` outside ``torchrun``: a
    lone process is started with ``mpirun -n 1``, not made a world of one by accident); and
    DistributedError when the launcher and MPI disagree on the number of processes.
    """
    if not wants_distributed(flag):
        return None
    load_mpi()  # a missing extra first: it is what to fix
    found = launched_size()
    if found is None:
        raise UsageError("--distributed: this process was not started by an MPI launcher; start the "
                         "processes with mpirun -n N (or srun under SLURM), or drop --distributed")
    comm = Communicator(timeout=timeout)
    if found[0] != comm.size:
        raise DistributedError(
            f"{found[1]}={found[0]} but MPI started {comm.size} process(es): mpi4py is using another "
            f"MPI library than the launcher's (check `python -m mpi4py --mpi-lib-version` against "
            f"`mpirun --version`), or the job was not started by mpirun/srun")
    return comm
