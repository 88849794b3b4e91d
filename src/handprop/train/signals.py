"""Stop signals during a run.

SIGTERM (timeouts, ``docker stop``, cluster schedulers) and SIGHUP (the terminal went away) stop
a run the way Ctrl-C does: they raise :class:`Interrupted`, a ``KeyboardInterrupt``, so the one
Ctrl-C path writes the checkpoint and prints the resume command; the exit status is
``128 + signal number`` (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP), as a shell reports a
process killed by it. A signal ignored when the run starts (``nohup``, a background job's
SIGINT) stays ignored. :func:`signals_held` keeps any of them from cutting a checkpoint write
in half. Handlers can only be set from the main thread; elsewhere these are no-ops.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator

#: The signals that ask a run to stop (SIGHUP is POSIX only).
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
                     if s is not None)


class Interrupted(KeyboardInterrupt):
    """A stop signal other than Ctrl-C's, raised like Ctrl-C's KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_of(interrupt: KeyboardInterrupt) -> signal.Signals:
    """The signal behind a KeyboardInterrupt: SIGINT unless it is an :class:`Interrupted`."""
    return signal.Signals(getattr(interrupt, "signum", signal.SIGINT))


def by_which(interrupt: KeyboardInterrupt) -> str:
    """'' for Ctrl-C, else ' by SIGTERM' (or the like): for messages saying a run was interrupted."""
    signum = signal_of(interrupt)
    return "" if signum == signal.SIGINT else f" by {signum.name}"


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """``128 + signal number``: the status a shell shows for a process stopped by that signal."""
    return 128 + signal_of(interrupt)


def _raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _handlers(signums: tuple[int, ...], handler: Callable) -> Iterator[dict[int, object]]:
    """Within: ``handler`` for each of ``signums`` not ignored now; the previous ones after."""
    if threading.current_thread() is not threading.main_thread():
        yield {}
        return
    previous = {s: signal.getsignal(s) for s in signums}
    previous = {s: h for s, h in previous.items() if h is not signal.SIG_IGN}
    try:
        for s in previous:
            signal.signal(s, handler)
        yield previous
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise :class:`Interrupted` (Ctrl-C raises KeyboardInterrupt already)."""
    with _handlers(tuple(s for s in STOP_SIGNALS if s != signal.SIGINT), _raise_interrupted):
        yield


@contextlib.contextmanager
def signals_held(replay: bool = True) -> Iterator[None]:
    """Within: stop signals are noted, not acted on, so the block (a checkpoint write) finishes.

    On leaving, the first one noted is sent again to the previous handler (``replay``), or
    dropped (``replay=False``: the run is stopping already and the block is its last write).
    """
    held: list[int] = []
    with _handlers(STOP_SIGNALS, lambda signum, frame: held.append(signum)):
        yield
    if held and replay:
        signal.raise_signal(held[0])
