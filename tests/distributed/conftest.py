"""Running tests under ``mpirun``: found beside this Python (the ``mpi`` extra's Open MPI wheel)
or on PATH, with mpi4py importable. Missing either is a skip naming the extra; with
HANDPROP_REQUIRE_MPI=1 (CI) it is a failure."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRE_MPI = os.environ.get("HANDPROP_REQUIRE_MPI") == "1"
HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def find_mpirun() -> str | None:
    beside = Path(sys.executable).with_name("mpirun")
    return str(beside) if beside.is_file() else shutil.which("mpirun")


class MPIRun:
    """``mpirun -n N`` of a Python script or module with this interpreter and this checkout."""

    def __init__(self, mpirun: str, data_root: Path | None = None):
        self.mpirun, self.data_root = mpirun, data_root

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"PYTHONPATH": os.pathsep.join([str(SRC), str(HERE), env.get("PYTHONPATH", "")]),
                    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
                    "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
        if self.data_root is not None:
            env["HANDPROP_DATA"] = str(self.data_root)
        env.update(extra)
        return env

    def command(self, n: int, *args: str | Path) -> list[str]:
        return [self.mpirun, "-n", str(n), "--oversubscribe", sys.executable, *map(str, args)]

    def run(self, n: int, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(n, *args), env=self.env(), capture_output=True, text=True,
                              timeout=timeout)

    def popen(self, n: int, *args: str | Path) -> subprocess.Popen:
        return subprocess.Popen(self.command(n, *args), env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def _mpi_or_skip() -> str:
    mpirun = find_mpirun()
    missing = [what for what, ok in (("mpi4py", importlib.util.find_spec("mpi4py") is not None),
                                     ("mpirun", mpirun is not None)) if not ok]
    if missing:
        reason = f"{' and '.join(missing)} not found: pip install 'handprop[mpi]'"
        if REQUIRE_MPI:
            pytest.fail(f"HANDPROP_REQUIRE_MPI=1 but {reason}")
        pytest.skip(reason)
    return mpirun  # type: ignore[return-value]


@pytest.fixture(scope="session")
def mpi() -> MPIRun:
    """mpirun without data (scenarios that build their own arrays)."""
    return MPIRun(_mpi_or_skip())


@pytest.fixture(scope="session")
def mpi_mnist(data_root) -> MPIRun:
    """mpirun whose processes find the real MNIST."""
    return MPIRun(_mpi_or_skip(), data_root)
