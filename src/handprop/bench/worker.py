"""A peer library in its own process: the bench calls functions of a module there, by name.

JAX fixes its thread pool and its float64 switch when it loads, for the whole process, and its
one-thread flags (:data:`XLA_ONE_THREAD`) still leave it running on two CPUs (measured: CPU time
1.5x wall time). In a worker the count is exact: the worker runs on as many CPUs as the other
libraries get threads (its CPU affinity, set before JAX loads), and nothing of JAX (its
threads, memory, flags) reaches the process that times handprop and PyTorch. The parent sends
``(operation, name, args)`` tuples pickled over the worker's stdin and reads ``(status, value)``
back from its stdout (the worker's own prints go to its stderr); ``put`` keeps a value (the data)
in the worker so later calls pass a :class:`Ref` to it instead of sending it again.
"""
from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from typing import Any

#: XLA's switches for one thread (JAX has no run-time thread control).
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


@dataclass(frozen=True)
class Ref:
    """A value kept in the worker by :meth:`Worker.put`, passed by name."""

    name: str


class Worker:
    """A child process that imports ``module`` with ``threads`` threads and runs its functions."""

    def __init__(self, module: str, threads: int):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "1"}
        if threads == 1:
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_site_of_handprop(), env.get("PYTHONPATH")]))
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([sys.executable, "-m", "handprop.bench.worker", module, str(threads)],
                                      stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        self.threads = threads

    def put(self, name: str, value: Any) -> Ref:
        self._send(("put", name, value))
        return Ref(name)

    def call(self, name: str, *args: Any) -> Any:
        return self._send(("call", name, args))

    def _send(self, message: tuple) -> Any:
        try:
            pickle.dump(message, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.flush()
            status, value = pickle.load(self._proc.stdout)
        except (BrokenPipeError, EOFError):
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"bench worker ({message[1]}) stopped: {' '.join(tail) or 'no message'}") from None
        if status != "ok":
            raise RuntimeError(f"bench worker ({message[1]}) failed:\n{value}")
        return value

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _site_of_handprop() -> str:
    """The folder this handprop is imported from, so the worker imports the same copy."""
    import handprop
    return os.path.dirname(os.path.dirname(os.path.abspath(handprop.__file__)))


def use_cpus(n: int) -> None:
    """Run this process on ``n`` of the CPUs it may use (the last ones: the first takes more
    interrupts), where the OS can pin a process; else leave it."""
    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        if n < len(allowed):
            os.sched_setaffinity(0, allowed[-n:])


def serve(module_name: str, threads: int) -> None:
    """The worker's loop: read a message, answer it, until the parent closes the pipe."""
    use_cpus(threads)
    channel_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the module's prints must not corrupt the channel
    channel_in = sys.stdin.buffer
    module = importlib.import_module(module_name)
    store: dict[str, Any] = {}
    while True:
        try:
            operation, name, payload = pickle.load(channel_in)
        except EOFError:
            return
        try:
            if operation == "put":
                store[name] = payload
                answer: tuple = ("ok", None)
            else:
                args = [store[a.name] if isinstance(a, Ref) else a for a in payload]
                answer = ("ok", getattr(module, name)(*args))
        except Exception:
            answer = ("error", traceback.format_exc())
        pickle.dump(answer, channel_out, protocol=pickle.HIGHEST_PROTOCOL)
        channel_out.flush()


if __name__ == "__main__":  # the worker: this file runs as __main__, and Ref must be the parent's class
    importlib.import_module("handprop.bench.worker").serve(sys.argv[1], int(sys.argv[2]))
