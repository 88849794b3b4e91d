"""Claiming a run directory: one run per directory, never two runs' files mixed.

* ``runs/<YYYYmmdd-HHMMSS>-<n>`` (the default) is created with an exclusive ``mkdir``; a name
  another process took first (three runs started in the same second) moves on to the next ``n``.
* ``--out DIR`` naming a directory that already holds files is refused, unless the run is
  resumed (``--resume``) or the user asks to replace the run's files (``--overwrite``).
* A lock file, held with ``flock`` for the life of the run and naming the holder's pid, refuses
  a second process on the same directory. The kernel releases the lock when its process dies,
  so a SIGKILLed run leaves no stale lock behind.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from pathlib import Path
from typing import Iterator

from ..errors import UsageError

#: The files a run writes; ``--overwrite`` removes these (and their temporaries), nothing else.
RUN_FILES = ("model.npz", "last.npz", "best.npz", "metrics.json", "metrics.csv", "curves.png", "confusion.png",
             "stats.json", "stats.png")
LOCK_NAME = ".handprop.lock"
#: How long a refused process waits for the holder to write its pid into the lock file.
_PID_WAIT_S = 1.0


@contextlib.contextmanager
def claim_run_dir(out: Path | None, resume: bool = False, overwrite: bool = False,
                  runs_root: Path = Path("runs")) -> Iterator[Path]:
    """The run directory, created if need be and locked for the block.

    ``out`` None: a new ``runs_root/<timestamp>-<n>``. Otherwise ``out`` itself, which must
    be empty unless ``resume`` (continue the run there) or ``overwrite`` (remove its run files).
    A directory this call created is removed again if the block leaves it empty (a run that
    failed before writing anything leaves nothing behind).
    """
    if out is None:
        out, created = new_default_run_dir(runs_root), True
    elif resume:
        if not out.is_dir():
            raise UsageError(f"--resume {out}: no such run directory")
        created = False
    else:
        created = _make_dir(out)
    lock_fd = None
    try:
        lock_fd = _lock(out)
        if not resume:
            _check_empty(out, overwrite)
        _remove_temporaries(out)  # we hold the lock: any temporary here is a dead process's
        yield out
    finally:
        if lock_fd is not None:
            _unlock(out, lock_fd)
        if created:
            with contextlib.suppress(OSError):  # not empty: the run wrote its files
                out.rmdir()


def new_default_run_dir(root: Path = Path("runs")) -> Path:
    """Create and return ``root/<YYYYmmdd-HHMMSS>-<n>`` with the lowest ``n`` nobody has taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    _make_dir(root)
    for n in range(1, 10_000):
        path = root / f"{stamp}-{n}"
        try:
            path.mkdir()  # exclusive: exactly one process succeeds for each name
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise _cannot_write(path, e) from None
    raise UsageError(f"cannot create a run directory under {root}: {stamp}-1 .. {stamp}-9999 all exist")


def _make_dir(path: Path) -> bool:
    """Create ``path`` (and parents) if missing; True if this call created it."""
    try:
        path.mkdir(parents=True)
        return True
    except FileExistsError:
        if path.is_dir():
            return False
        raise _cannot_write(path, OSError(errno.ENOTDIR, "it exists and is not a directory")) from None
    except OSError as e:
        raise _cannot_write(path, e) from None


def _cannot_write(path: Path, e: OSError) -> UsageError:
    return UsageError(f"cannot write to the output directory {path}: {e.strerror or e}")


def _lock(out: Path) -> int | None:
    """Take ``out``'s lock and write our pid into it; the open descriptor holds the lock."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no flock; say so rather than pretend
        return _unguarded(out, "no file locks on this platform")
    path = out / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise _cannot_write(out, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(f"run directory {out} is in use by another handprop process (pid {_holder(path)}); "
                              f"wait for it to finish or stop it") from None
        except OSError as e:  # e.g. a file system without locks: run, but say what is not guarded
            os.close(fd)
            return _unguarded(out, e.strerror)
        # The holder we waited for may have removed the file while we opened it: our lock is
        # then on a deleted file; start again on the file the path names now.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
        os.close(fd)


def _unguarded(out: Path, why: str) -> None:
    print(f"note: cannot lock {out} ({why}): a second run there would not be refused", file=sys.stderr)


def _holder(path: Path) -> str:
    """The pid written in a held lock file (the holder writes it right after locking)."""
    deadline = time.monotonic() + _PID_WAIT_S
    while True:
        with contextlib.suppress(OSError):
            pid = path.read_text().strip()
            if pid:
                return pid
        if time.monotonic() > deadline:
            return "unknown"
        time.sleep(0.02)


def _unlock(out: Path, fd: int) -> None:
    """Remove the lock file while still holding it, then release it (see :func:`_lock`)."""
    with contextlib.suppress(OSError):
        os.unlink(out / LOCK_NAME)
    os.close(fd)


def _check_empty(out: Path, overwrite: bool) -> None:
    """Refuse a directory holding files (another run's, or anything else) unless ``overwrite``;
    with ``overwrite``, remove the run files there so the new run's files cannot mix with them."""
    present = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)
    if not present:
        return
    if not overwrite:
        shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
        raise UsageError(f"--out {out} is not empty ({shown}); resume that run with --resume {out}, "
                         f"replace its files with --overwrite, or choose another directory")
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()


def _remove_temporaries(out: Path) -> None:
    """Delete half-written ``.<run file>.<pid>.<random>.part`` files left by a killed run."""
    for name in RUN_FILES:
        for part in out.glob(f".{name}.*.part"):
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
