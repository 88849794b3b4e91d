"""Fetching dataset files from HTTP mirrors: streamed to a temp file, checked, then renamed.

Each file is checked twice before it may become a cache file: the byte count against
``Content-Length`` and the SHA-256 of its *decompressed* bytes against the registry. A failed
or interrupted transfer deletes its temp file and the next mirror is tried.
"""
from __future__ import annotations

import hashlib
import http.client
import sys
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..serialize import atomic_write
from .errors import DatasetError

_CHUNK = 1 << 16


def download_files(files: Mapping[str, str], folder: Path, mirrors: Sequence[str], *,
                   timeout: float = 30.0, progress: bool | None = None) -> None:
    """Download each ``<name>.gz`` in ``files`` (name -> SHA-256 of its decompressed bytes)
    into ``folder``, trying ``mirrors`` (base URLs) in order for each file.

    ``folder`` and its missing parents are created first and removed again if the download
    fails while they are still empty, so a mistyped folder is never left behind. Raises
    :class:`DatasetError` saying briefly why the last try failed; its ``details`` list every
    URL tried and why it failed, in full.
    """
    if not mirrors:
        raise DatasetError("no mirrors given")
    created: list[Path] = []
    try:
        _make_folders(folder, created)
        for name, sha256 in files.items():
            failures = []
            for mirror in mirrors:
                url = f"{mirror.rstrip('/')}/{name}.gz"
                try:
                    fetch(url, folder / f"{name}.gz", sha256, timeout=timeout, progress=progress)
                    break
                except (OSError, http.client.HTTPException, zlib.error, ValueError) as exc:
                    failures.append((url, exc))
            else:
                raise DatasetError(_short_reason(failures[-1][1]),
                                   [f"Downloading {name}.gz into {folder} failed; tried:",
                                    *(f"  {url}: {exc}" for url, exc in failures)])
    except BaseException:
        _remove_empty(created)
        raise


def _short_reason(exc: BaseException) -> str:
    """Why a download failed, in a few words: the cause inside urllib's wrapper
    ("Connection refused", not "<urlopen error [Errno 111] Connection refused>")."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else OSError(exc.reason)
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else None) or str(exc)


def _make_folders(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and its missing parents, appending each one made to ``created``."""
    try:
        missing = []
        for parent in (folder, *folder.parents):
            if parent.exists():  # a folder, or a file that makes mkdir say "Not a directory"
                break
            missing.append(parent)
        for new in reversed(missing):
            new.mkdir(exist_ok=True)
            created.append(new)
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot create the download folder: {exc.strerror or exc}") from exc


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders of ``created`` (parents first in the list), deepest first, while empty."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:  # not empty: a verified file landed there, keep it and its parents
            return


def fetch(url: str, dest: Path, sha256: str, *, timeout: float = 30.0,
          progress: bool | None = None) -> None:
    """Download ``url`` to ``dest`` atomically, verifying length and decompressed SHA-256.

    ``timeout`` (seconds) bounds every connect and read. ``progress``: True shows a bar
    (tqdm if installed, else plain lines on stderr), False nothing, None a bar only when
    stderr is a terminal and plain lines otherwise.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "handprop-data"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        digest = _GunzipSha256() if url.endswith(".gz") else hashlib.sha256()
        bar = _progress(total, url, progress)
        try:
            with atomic_write(dest) as out:
                received = 0
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                if total is not None and received != total:
                    raise DatasetError(f"connection closed after {received} of {total} bytes")
                got = digest.hexdigest()
                if got != sha256.lower():
                    raise DatasetError(f"SHA-256 mismatch: decompressed bytes hash to {got}, "
                                       f"expected {sha256.lower()}")
        finally:
            bar.close()


class _GunzipSha256:
    """SHA-256 of the decompressed content of a gzip stream fed in chunks (multi-member ok)."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._inflate = zlib.decompressobj(wbits=31)

    def update(self, chunk: bytes) -> None:
        while chunk:
            if self._inflate.eof:
                self._inflate = zlib.decompressobj(wbits=31)
            self._sha.update(self._inflate.decompress(chunk))
            chunk = self._inflate.unused_data if self._inflate.eof else b""

    def hexdigest(self) -> str:
        if not self._inflate.eof:
            raise DatasetError("truncated gzip stream")
        return self._sha.hexdigest()


def _progress(total: int | None, desc: str, enabled: bool | None) -> Any:
    """A progress reporter with ``update(n)`` and ``close()``; tqdm is imported only here."""
    if enabled is False:
        return _Plain(total, desc, quiet=True)
    if enabled or sys.stderr.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            return _Plain(total, desc, quiet=False)
        return tqdm(total=total, desc=desc.rsplit("/", 1)[-1], unit="B", unit_scale=True,
                    unit_divisor=1024, file=sys.stderr)
    return _Plain(total, desc, quiet=False)


class _Plain:
    """Progress as two plain lines on stderr (start and end), or nothing when quiet."""

    def __init__(self, total: int | None, desc: str, *, quiet: bool) -> None:
        self._quiet, self._desc, self._done = quiet, desc, 0
        size = f" ({total / 2**20:.1f} MiB)" if total is not None else ""
        self._say(f"downloading {desc}{size}")

    def update(self, n: int) -> None:
        self._done += n

    def close(self) -> None:
        self._say(f"  {self._done / 2**20:.1f} MiB received")

    def _say(self, line: str) -> None:
        if not self._quiet:
            print(line, file=sys.stderr, flush=True)
