"""Ending a data-parallel run cleanly: Ctrl-C / SIGTERM, and a process that fails alone.

**Signals.** The launcher passes Ctrl-C and SIGTERM on to every process at about the same time,
but not at the same step: a process that stopped at once would leave the others waiting in their
next collective call. :class:`StopSignals` only notes the signal; the training callbacks add the
note to a sum they reduce at every step anyway, and every process stops at the first step whose
sum is non-zero, by raising :class:`StopRequested` (a KeyboardInterrupt, so the usual Ctrl-C
path checkpoints on rank 0). A second signal stops this process at once. Open MPI's ``mpirun``
sends SIGKILL 0.25 s after SIGTERM, which is enough for small models; SIGUSR1 (forwarded without
the kill) stops the same way with no deadline.

**Failures.** An exception on one process only (a bug, a full disk on one node) must end the
whole job: :func:`abort_on_error` prints it and calls ``MPI_Abort``, and the launcher stops the
others. Exceptions every process raises at the same step (an agreed stop, a checksum mismatch)
exit normally instead.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import traceback
from collections.abc import Iterator
from types import FrameType
from typing import Any, Callable, TypeVar

from .communicator import Communicator
from .errors import DistributedError, RanksDivergedError, StopRequested

T = TypeVar("T")

#: The signals that ask a run to checkpoint and stop.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1") if hasattr(signal, name))


class StopSignals:
    """Notes Ctrl-C, SIGTERM and SIGUSR1 instead of raising; see the module docstring."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> StopSignals:
        """Take over the stop signals (main thread only); :meth:`restore` gives them back."""
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._note)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # asked twice: stop this process now
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    @property
    def flag(self) -> float:
        """1.0 once a stop signal arrived here: the term this process adds to the agreed sum."""
        return 0.0 if self.received is None else 1.0

    def stop_if_any(self, total: float, where: str) -> None:
        """Raise StopRequested when ``total``, the sum of every process's :attr:`flag`, is non-zero."""
        if total > 0:
            what = self.received or "a stop signal sent to another process"
            raise StopRequested(f"{what} received; every process stopped {where}")


def _raised_by_every_process(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it was raised while handling, is one every process
    raises at the same step (so nobody is left waiting)."""
    while exc is not None:
        if isinstance(exc, (StopRequested, RanksDivergedError)) or getattr(exc, _EVERY_PROCESS, False):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def abort_on_error(comm: Communicator) -> Iterator[None]:
    """Run the block; if it raises on this process alone, print the error and abort the job.

    ``ValueError`` (bad input) prints one line and aborts with status 2, SystemExit(n) with
    status n; anything else prints its traceback and aborts with status 1. SystemExit(0) and
    agreed exceptions pass through.
    """
    try:
        yield
    except SystemExit as e:
        if e.code in (0, None):
            raise
        _abort(comm, e, e.code if isinstance(e.code, int) else 1)
    except BaseException as e:
        if _raised_by_every_process(e):
            raise
        _abort(comm, e, 2 if isinstance(e, ValueError) else 1)


@contextlib.contextmanager
def stopping_together(comm: Communicator) -> Iterator[StopSignals]:
    """The block of a data-parallel job: stop signals noted (the yielded :class:`StopSignals`, for
    the training callbacks) and an error on this process alone ending the job
    (:func:`abort_on_error`); the previous signal handlers are back afterwards."""
    stop = StopSignals().install()
    try:
        with abort_on_error(comm):
            yield stop
    finally:
        stop.restore()


def on_every_process(comm: Communicator, make: Callable[[], T]) -> T:
    """``make()`` (which must call no collective), then one Allreduce: an exception that every
    process raised (bad settings, missing data: the same input everywhere) is raised normally,
    marked so :func:`abort_on_error` lets it pass, and the command line reports it once; one
    raised by some processes only ends the job through :func:`abort_on_error`."""
    try:
        result, error = make(), None
    except Exception as e:  # noqa: BLE001 - counted, then raised again
        result, error = None, e
    failed = comm.agree(error is not None)
    if error is None:
        if failed:  # another process failed alone: it is aborting the job; wait for that
            raise DistributedError(f"{failed} other process(es) failed while setting up; ending the job")
        return result  # type: ignore[return-value]
    raise raised_everywhere(error) if failed == comm.size else error


#: The attribute that marks an exception every process raised (see :func:`raised_everywhere`).
_EVERY_PROCESS = "raised_on_every_process"


def raised_everywhere(error: BaseException) -> BaseException:
    """``error``, marked as raised by every process alike: :func:`abort_on_error` lets it pass."""
    setattr(error, _EVERY_PROCESS, True)
    return error


def _abort(comm: Communicator, exc: BaseException, code: int) -> None:
    where = f"handprop (rank {comm.rank} of {comm.size})"
    if isinstance(exc, SystemExit):
        print(f"{where}: exited with status {exc.code}", file=sys.stderr)
    elif isinstance(exc, (ValueError, DistributedError)):
        print(f"{where}: error: {exc}", file=sys.stderr)
    else:
        print(f"{where}: {type(exc).__name__}, ending the job:", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
    comm.abort(code)
