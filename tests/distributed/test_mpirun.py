"""Real ``mpirun -n 2 handprop train`` jobs: two processes train like one, only rank 0 writes,
SIGTERM checkpoints and the resume is bit-identical, another N resumes with a warning, errors are
reported once, and a dead or stuck process ends the job."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from handprop.serialize import load_arrays

from .conftest import HERE

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="MPI launchers and POSIX signals")

GUARDED = HERE / "guarded_train.py"
#: 8,010 training images at batch 64: 126 steps an epoch, the last batch of 10 split 5 + 5;
#: momentum, so a resume must restore the optimiser's state too.
FLAGS = ["--subset", "8010", "--valid", "1000", "--batch-size", "64", "--epochs", "3", "--hidden", "32",
         "--optimizer", "sgd", "--lr", "0.02", "--momentum", "0.9", "--schedule", "none", "--quiet"]
#: What a finished run leaves in its directory (with matplotlib): rank 0's files, nothing else.
RUN_FILES = ["best.npz", "confusion.png", "curves.png", "last.npz", "metrics.csv", "metrics.json", "model.npz"]
#: Slows each step by 4 ms in runs a test interrupts after epoch 1 (see guarded_train.py).
SLOW = "0.004"


def weights(run_dir: Path) -> dict[str, np.ndarray]:
    arrays, _ = load_arrays(run_dir / "model.npz")
    return {k: v for k, v in arrays.items() if k.startswith("model.")}


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def untimed(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in rec.items() if k not in ("time", "elapsed")} for rec in metrics(run_dir)["history"]]


def handprop_train(mpi_mnist, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m handprop train`` as one process, no launcher."""
    return subprocess.run([sys.executable, "-m", "handprop", "train", *map(str, args)], env=mpi_mnist.env(),
                          capture_output=True, text=True, timeout=timeout)


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def reference(mpi_mnist, tmp_path_factory) -> Path:
    """An uninterrupted two-process run of FLAGS."""
    out = tmp_path_factory.mktemp("reference") / "run"
    done = mpi_mnist.run(2, GUARDED, *FLAGS, "--out", out, timeout=120)
    assert done.returncode == 0, done.stderr
    return out


def test_scenarios_under_two_processes(mpi):
    done = mpi.run(2, HERE / "mpi_scenarios.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok ") == 5, done.stdout


def test_two_processes_train_like_one_and_only_rank_0_writes(reference, mpi_mnist, tmp_path):
    one = tmp_path / "one"
    single = handprop_train(mpi_mnist, *FLAGS, "--out", one)
    assert single.returncode == 0, single.stderr
    two, one_w = weights(reference), weights(one)
    assert two.keys() == one_w.keys() and two
    worst = max(float(np.abs(two[k] - one_w[k]).max() / np.abs(one_w[k]).max()) for k in two)
    assert worst <= 1e-5, f"max relative weight difference {worst:.2e} after 3 epochs"
    m2, m1 = metrics(reference), metrics(one)
    assert (m2["world_size"], m1["world_size"]) == (2, 1)
    assert abs(m2["test_accuracy"] - m1["test_accuracy"]) <= 0.001
    for r2, r1 in zip(untimed(reference), untimed(one), strict=True):  # every example once, reduced over ranks
        assert r2.keys() == r1.keys() and all(abs(r2[k] - r1[k]) <= 1e-5 for k in r1), (r2, r1)
    # rank 1 ran with every file writer raising (guarded_train.py): these are rank 0's
    assert sorted(p.name for p in reference.iterdir()) == RUN_FILES


def test_the_default_run_directory_is_rank_0_s_and_printed_once(mpi_mnist, tmp_path):
    done = subprocess.run(mpi_mnist.command(2, GUARDED, "--subset", "256", "--valid", "256", "--epochs", "1"),
                          env=mpi_mnist.env(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and sorted(p.name for p in runs[0].iterdir()) == RUN_FILES
    assert done.stdout.count("global batch 64 over 2 processes (data-parallel)") == 1, done.stdout
    assert done.stdout.count(f"wrote runs/{runs[0].name}/") == 1, done.stdout


@contextlib.contextmanager
def training_job(mpi_mnist, tmp_path: Path, *flags: str, slow: bool = True):
    """A two-process guarded run of ``flags``, yielded (process, run dir, pid dir) once epoch 1 is done."""
    out, pids = tmp_path / "run", tmp_path / "pids"
    pids.mkdir()
    env = mpi_mnist.env(HANDPROP_TEST_PID_DIR=str(pids), HANDPROP_TEST_STEP_SLEEP=SLOW if slow else "0")
    proc = subprocess.Popen(mpi_mnist.command(2, GUARDED, *flags, "--out", out), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(out / "last.npz", proc)
        yield proc, out, pids
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def rank_pid(pids: Path, rank: int) -> int:
    return int((pids / f"rank{rank}.pid").read_text())


def test_sigterm_to_mpirun_checkpoints_and_the_resume_is_bit_identical(reference, mpi_mnist, tmp_path):
    with training_job(mpi_mnist, tmp_path, *FLAGS) as (proc, out, pids):
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    # Open MPI's mpirun kills the job 0.25 s after forwarding SIGTERM and drops the output:
    # the ranks' own exit files show that each stopped by itself, at the same step.
    assert [(pids / f"rank{r}.exit").read_text() for r in range(2)] == ["130", "130"]
    m = metrics(out)
    assert m["status"] == "interrupted" and m["world_size"] == 2
    assert m["resume"] == f"mpirun -n 2 handprop train --resume {out}"
    _, meta = load_arrays(out / "last.npz")
    assert meta["epoch"] in (1, 2) and meta["world_size"] == 2
    assert not list(out.glob(".*")), "a whole checkpoint, no temporary files, no lock left"

    resumed = mpi_mnist.run(2, GUARDED, "--resume", out, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "warning" not in resumed.stderr, resumed.stderr
    for name, w in weights(reference).items():
        assert np.array_equal(weights(out)[name], w), f"{name} differs from the uninterrupted run"
    assert untimed(out) == untimed(reference)


def test_sigterm_to_every_rank_prints_the_resume_command_once_and_another_n_resumes(reference, mpi_mnist,
                                                                                     tmp_path):
    """What ``srun`` does on scancel: SIGTERM to each process (mpirun is not in the way here)."""
    with training_job(mpi_mnist, tmp_path, *FLAGS) as (proc, out, pids):
        for r in range(2):
            os.kill(rank_pid(pids, r), signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert stderr.count(f"resume with: mpirun -n 2 handprop train --resume {out}") == 1, stderr
    assert "SIGTERM received; every process stopped before training step" in stderr
    assert "Traceback" not in stderr

    one = handprop_train(mpi_mnist, "--resume", out)
    assert one.returncode == 0, one.stderr
    assert "was trained on 2 process(es), resumed on 1: the same batches in the same order" in one.stderr
    assert metrics(out)["world_size"] == 1
    for name, w in weights(reference).items():
        assert float(np.abs(weights(out)[name] - w).max() / np.abs(w).max()) <= 1e-5, name


def test_a_killed_rank_ends_the_job_with_an_error_within_seconds(mpi_mnist, tmp_path):
    with training_job(mpi_mnist, tmp_path, *FLAGS[:6], "--epochs", "100", "--quiet", slow=False) \
            as (proc, out, pids):
        os.kill(rank_pid(pids, 1), signal.SIGKILL)
        start = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
        elapsed = time.monotonic() - start
    assert proc.returncode != 0 and elapsed < 10, (proc.returncode, elapsed)
    assert "rank 1" in stderr and "signal 9" in stderr, stderr
    survivor = Path(f"/proc/{rank_pid(pids, 0)}/stat")
    assert not survivor.exists() or survivor.read_text().split(")")[-1].split()[0] in "ZX", "rank 0 is gone"


@pytest.mark.parametrize("flags, message", [
    (["--subset", "60000"], "handprop train: error: --subset 60000 asks for more than the 50,000 training images"),
    (["--batch-size", "1"], "handprop train: error: --batch-size 1 is the global batch, smaller than the 2 processes"),
    (["--out", "{out}"], "handprop train: error: --out {out} is not empty (other)"),
])
def test_an_error_every_rank_meets_is_one_line_from_rank_0(mpi_mnist, tmp_path, flags, message):
    (tmp_path / "other").write_text("not a run")
    flags, message = [f.format(out=tmp_path) for f in flags], message.format(out=tmp_path)
    done = mpi_mnist.run(2, GUARDED, *flags, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count(message) == 1 and "handprop (rank" not in done.stderr, done.stderr


def test_weights_that_drift_apart_stop_the_run_with_one_clear_error(mpi_mnist, tmp_path):
    done = subprocess.run(mpi_mnist.command(2, GUARDED, *FLAGS, "--out", tmp_path / "run"),
                          env=mpi_mnist.env(HANDPROP_TEST_NUDGE_STEP="3"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("handprop train: error: after step 100: the weights are no longer identical on every "
                             "process: rank(s) 1 differ from rank 0 in layers.0.weight") == 1, done.stderr
    assert "Traceback" not in done.stderr


STUCK = """
import time, numpy as np
from handprop.distributed import Communicator, abort_on_error
comm = Communicator(timeout=1)
with abort_on_error(comm):
    if comm.rank == 1:
        {rank1}
    comm.allreduce(np.zeros(1))
"""


@pytest.mark.parametrize("rank1, code, message", [
    ("time.sleep(60)", 1, "rank 0 of 2 waited more than 1 s in Allreduce for the other processes"),
    ("raise ValueError('no data on this node')", 2, "handprop (rank 1 of 2): error: no data on this node"),
])
def test_a_stuck_or_failing_rank_ends_the_job(mpi, rank1, code, message):
    start = time.monotonic()
    done = mpi.run(2, "-c", STUCK.format(rank1=rank1), timeout=30)
    assert time.monotonic() - start < 15
    assert done.returncode == code, done.stderr
    assert message in done.stderr
