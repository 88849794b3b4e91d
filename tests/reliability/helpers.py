"""Real ``python -m handprop train`` children for the reliability tests: started with the
default signal dispositions, running this checkout's code from any working directory."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import handprop
from train.helpers import SMALL, child_env, default_signals, handprop_cmd

#: A run long enough to be signalled mid-way (about 0.05 s an epoch), constant learning rate so
#: that a resume may extend or end it.
LONG = [*SMALL, "--epochs", "200", "--schedule", "none"]
SRC = str(Path(handprop.__file__).resolve().parents[1])


def env(data_root, **extra: str) -> dict[str, str]:
    """:func:`child_env` with this checkout's ``src`` first on an absolute PYTHONPATH."""
    e = child_env(data_root, **extra)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, e.get("PYTHONPATH", "")) if p)
    return e


def start(args, data_root, cwd: Path | None = None, preexec=default_signals, stdout=subprocess.PIPE,
          stderr=subprocess.PIPE, **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen(handprop_cmd(*args), env=env(data_root, **extra_env), cwd=cwd, stdout=stdout,
                            stderr=stderr, text=True, preexec_fn=preexec)


def run(args, data_root, cwd: Path | None = None, timeout: float = 120, **extra_env: str) -> subprocess.CompletedProcess:
    proc = start(args, data_root, cwd, **extra_env)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for_epoch(proc: subprocess.Popen, epoch: int = 1) -> list[str]:
    """Read the child's stdout up to the table row of ``epoch``; the lines read."""
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, f"the run ended before epoch {epoch}: {lines} {proc.communicate()}"
        lines.append(line)
        if line.split()[:1] == [str(epoch)]:
            return lines


def stop(proc: subprocess.Popen) -> None:
    """Kill a child a failed test left running."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def listing(run_dir: Path) -> dict[str, bytes]:
    """Every file of a directory (dot-files included) with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(Path(run_dir).iterdir())}


def one_line_error(proc: subprocess.CompletedProcess | tuple, *needles: str) -> str:
    """The single stderr line of a refused command (exit 2, no traceback), checked for ``needles``."""
    code, err = (proc.returncode, proc.stderr) if hasattr(proc, "returncode") else (proc[0], proc[2])
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
