"""Shared helpers for the trainer and CLI tests: run ``handprop`` in-process or as a child."""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from handprop import cli
from handprop.serialize import load_arrays

#: Small, fast runs: 2,000 training images, 1,000 validation images, one narrow hidden layer.
SMALL = ["--subset", "2000", "--valid", "1000", "--hidden", "32"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_main(args: list[str]) -> tuple[int, str, str]:
    """``handprop.cli.main(args)`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as e:  # argparse errors exit from inside the parser
            code = e.code
    return code, out.getvalue(), err.getvalue()


def child_env(data_root: Path | str | None, **extra: str) -> dict[str, str]:
    """The environment for a ``python -m handprop`` child: real data, one BLAS thread (the
    machine may be shared; OpenBLAS threads fighting for cores make small runs 5x slower)."""
    env = dict(os.environ)
    if data_root is not None:
        env["HANDPROP_DATA"] = str(data_root)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def default_signals() -> None:
    """A ``preexec_fn``: the child starts with the default signal dispositions. A suite run in
    the background (``pytest &``) has SIGINT ignored, and an ignored signal stays ignored in a
    child; the signal tests want theirs delivered."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def handprop_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "handprop", *[str(a) for a in args]]


def run_child(args, data_root, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    return subprocess.run(handprop_cmd(*args), env=child_env(data_root, **env), capture_output=True,
                          text=True, timeout=timeout)


def read_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def model_weights(path: Path) -> dict[str, np.ndarray]:
    arrays, _ = load_arrays(path)
    return {k: v for k, v in arrays.items() if k.startswith("model.")}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = model_weights(a), model_weights(b)
    assert wa.keys() == wb.keys() and wa
    for k in wa:
        assert wa[k].dtype == wb[k].dtype, k
        assert np.array_equal(wa[k], wb[k]), f"{k}: max diff {np.abs(wa[k] - wb[k]).max()}"


def strip_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in rec.items() if k not in ("time", "elapsed")} for rec in history]


_SMALL_RUN: dict = {}


def small_run_once(tmp_path_factory, data_root) -> tuple[Path, str, str]:
    """One finished 2-epoch run (shuffling, momentum, one-cycle), shared by every test module
    of the session: (run directory, stdout, stderr)."""
    if "run" not in _SMALL_RUN:
        old = os.environ.get("HANDPROP_DATA")
        os.environ["HANDPROP_DATA"] = str(data_root)
        try:
            out = tmp_path_factory.mktemp("small") / "run"
            code, stdout, stderr = run_main(["train", *SMALL, "--epochs", "2", "--out", out])
        finally:
            if old is None:
                del os.environ["HANDPROP_DATA"]
            else:
                os.environ["HANDPROP_DATA"] = old
        assert code == 0, stderr
        _SMALL_RUN["run"] = (out, stdout, stderr)
    return _SMALL_RUN["run"]
