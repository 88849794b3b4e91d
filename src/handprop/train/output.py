"""Output whose reader may go away: ``handprop train | head``, a closed terminal, a dead ``tee``.

A run's real output is its directory; what it prints is a view of it. So when stdout's reader
has gone, the run goes on to the end with the rest of its printed output dropped (and says so
once on stderr), writes every file, and exits with the status it would have had: a closed pipe
never ends a run early and never hides how it ended.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import Any, Callable, Iterator, TextIO

#: write() errors meaning nobody reads any more: a closed pipe, a hung-up terminal.
_READER_GONE = {errno.EPIPE, errno.EIO}


class DroppingStream:
    """A text stream that, once its reader has gone, drops what is written instead of raising."""

    def __init__(self, stream: TextIO, on_reader_gone: Callable[[], None] = lambda: None):
        self.stream, self.on_reader_gone = stream, on_reader_gone
        self.reader_gone = False

    def write(self, text: str) -> int:
        self._attempt(self.stream.write, text)
        return len(text)

    def flush(self) -> None:
        self._attempt(self.stream.flush)

    def isatty(self) -> bool:
        return not self.reader_gone and self.stream.isatty()

    def __getattr__(self, name: str) -> Any:  # fileno, encoding, ... of the wrapped stream
        return getattr(self.stream, name)

    def _attempt(self, method: Callable, *args: Any) -> None:
        if self.reader_gone:
            return
        try:
            method(*args)
        except OSError as e:
            if e.errno not in _READER_GONE:
                raise
            self.reader_gone = True
            _point_at_devnull(self.stream)
            self.on_reader_gone()


def _point_at_devnull(stream: TextIO) -> None:
    """Send the stream's file descriptor to /dev/null, so what is still buffered in it (and the
    interpreter's flush at exit) goes nowhere instead of failing again."""
    with contextlib.suppress(OSError, ValueError):  # no descriptor (StringIO), or closed already
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)


@contextlib.contextmanager
def reader_tolerant_output(run_dir: os.PathLike | str) -> Iterator[None]:
    """Within: ``sys.stdout`` and ``sys.stderr`` drop output once their reader has gone; a
    closed stdout is reported on stderr (if that is still read) with where the files go."""
    err = DroppingStream(sys.stderr)

    def tell() -> None:
        print(f"handprop train: stdout was closed: training goes on with its output dropped; "
              f"every file is still written to {run_dir}/", file=err, flush=True)

    with contextlib.redirect_stdout(DroppingStream(sys.stdout, tell)), contextlib.redirect_stderr(err):
        yield
