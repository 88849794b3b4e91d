"""Fixtures for the data tests: hand-built IDX bytes, tiny datasets, a local HTTP server."""
from __future__ import annotations

import builtins
import dataclasses
import errno
import gzip
import hashlib
import http.server
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from handprop.data import DATASETS, DatasetSpec

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B,
         np.dtype("i4"): 0x0C, np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of ``array``, written independently of handprop's writer."""
    array = np.asarray(array)
    code = CODES[array.dtype.newbyteorder("=")]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def tiny_arrays(n_train: int = 12, n_test: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Four small MNIST-like arrays: train images, train labels, test images, test labels."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_train, dtype=np.uint8),
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_test, dtype=np.uint8)]


def write_files(folder: Path, arrays: list[np.ndarray], gz: bool = True) -> dict[str, bytes]:
    """Write the four arrays as IDX files into ``folder``; return name -> file bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    blobs = {}
    for name, array in zip(FILES, arrays):
        raw = idx_bytes(array)
        blob = gzip.compress(raw, mtime=0) if gz else raw
        (folder / (f"{name}.gz" if gz else name)).write_bytes(blob)
        blobs[name] = blob
    return blobs


def spec_for(arrays: list[np.ndarray], name: str = "tiny", **kw) -> DatasetSpec:
    """A registry entry whose checksums match ``arrays``."""
    sums = {f: hashlib.sha256(idx_bytes(a)).hexdigest() for f, a in zip(FILES, arrays)}
    return DatasetSpec(name=name, files=sums, mirrors=("http://127.0.0.1:9/none/",),
                       classes=tuple(str(d) for d in range(10)), **kw)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An isolated environment: empty cache, no HANDPROP_DATA, no proxy for 127.0.0.1."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HANDPROP_DATA", raising=False)
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    return tmp_path


@pytest.fixture
def tiny(env, monkeypatch):
    """Register a tiny dataset "tiny" (no files anywhere yet); returns (arrays, blobs, spec)."""
    arrays = tiny_arrays()
    blobs = {f: gzip.compress(idx_bytes(a), mtime=0) for f, a in zip(FILES, arrays)}
    spec = spec_for(arrays, system_dirs=(str(env / "system" / "tiny"),))
    monkeypatch.setitem(DATASETS, "tiny", spec)
    return arrays, blobs, spec


def full_message(exc: BaseException) -> str:
    """An error's message and its details (the notes a traceback shows), as one text."""
    return "\n".join([str(exc), *getattr(exc, "details", [])])


@pytest.fixture
def deny(monkeypatch):
    """``deny(path)``: make ``path`` unreadable to this process, as permissions would for a
    normal user (the tests may run as root, whom chmod does not stop). A denied folder lets
    nothing inside it be stat'ed or opened; a denied file cannot be opened, until a new file
    replaces it (permissions belong to the file, not to its name)."""
    folders: list[Path] = []
    files: dict[Path, int] = {}  # path -> inode
    real_stat, real_open = os.stat, builtins.open

    def check(path, *, opening: bool) -> None:
        if isinstance(path, int):  # a file descriptor
            return
        p = Path(os.fsdecode(path)).absolute()
        if any(d in p.parents for d in folders) or (opening and p in files and real_stat(p).st_ino == files[p]):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(p))

    def fake_stat(path, *args, **kwargs):
        check(path, opening=False)
        return real_stat(path, *args, **kwargs)

    def fake_open(file, *args, **kwargs):
        check(file, opening=True)
        return real_open(file, *args, **kwargs)

    def deny_path(path) -> None:
        path = Path(path).absolute()
        if path.is_file():
            files[path] = real_stat(path).st_ino
        else:
            folders.append(path)

    monkeypatch.setattr(os, "stat", fake_stat)
    monkeypatch.setattr(builtins, "open", fake_open)
    return deny_path


def replace_spec(monkeypatch, name: str, **changes) -> DatasetSpec:
    """Swap registry entry ``name`` for a copy with ``changes`` for this test."""
    spec = dataclasses.replace(DATASETS[name], **changes)
    monkeypatch.setitem(DATASETS, name, spec)
    return spec


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes``: path -> (mode, bytes); mode "ok", "cut" (Content-Length but
    the connection closes halfway), "cut-chunkless" (no length, closes halfway), "hang"."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)
        mode, body = self.server.routes.get(self.path, ("missing", b""))
        if mode == "missing":
            self.send_error(404)
            return
        if mode == "hang":
            self.server.release.wait(10)
            return
        self.send_response(200)
        if mode != "cut-chunkless":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if mode == "ok" else body[: len(body) // 2])
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 in a thread; set ``server.routes``, read ``server.requests``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.routes, httpd.requests, httpd.release = {}, [], threading.Event()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()
