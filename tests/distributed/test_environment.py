"""Launcher detection from the environment, and mpi4py staying out of ``import handprop``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from handprop.distributed import launched_rank, launched_size, wants_distributed


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"OMPI_COMM_WORLD_SIZE": "4"}, (4, "OMPI_COMM_WORLD_SIZE")),
    ({"PMI_SIZE": "2"}, (2, "PMI_SIZE")),
    ({"MV2_COMM_WORLD_SIZE": "3"}, (3, "MV2_COMM_WORLD_SIZE")),
    ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_NTASKS": "8"}, (8, "SLURM_STEP_NUM_TASKS")),
    ({"SLURM_NTASKS": "8"}, None),  # an sbatch script itself is one process: only srun's tasks count
    ({"OMPI_COMM_WORLD_SIZE": "2", "SLURM_STEP_NUM_TASKS": "1"}, (2, "OMPI_COMM_WORLD_SIZE")),
])
def test_launched_size(env, expected):
    assert launched_size(env) == expected


@pytest.mark.parametrize("env, rank", [({}, 0), ({"OMPI_COMM_WORLD_RANK": "1"}, 1), ({"PMI_RANK": "3"}, 3),
                                       ({"SLURM_PROCID": "2"}, 2)])
def test_launched_rank(env, rank):
    assert launched_rank(env) == rank


@pytest.mark.parametrize("value", ["", "two", "0", "-1"])
def test_a_garbled_size_variable_is_an_error_naming_it(value):
    with pytest.raises(ValueError, match=f"OMPI_COMM_WORLD_SIZE={value!r}: expected a positive number"):
        launched_size({"OMPI_COMM_WORLD_SIZE": value})


def test_the_flag_decides_else_more_than_one_launched_process():
    assert wants_distributed(None, {"PMI_SIZE": "2"})
    assert not wants_distributed(None, {"PMI_SIZE": "1"})  # mpirun -n 1: a plain run
    assert not wants_distributed(None, {})
    assert wants_distributed(True, {})  # --distributed: one process through the MPI code path
    assert not wants_distributed(False, {"PMI_SIZE": "4"})  # --no-distributed


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_importing_handprop_and_its_distributed_package_does_not_import_mpi4py():
    out = _python("import sys, handprop, handprop.cli, handprop.train.run, handprop.distributed, "
                  "handprop.distributed.bench; print('mpi4py' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_without_mpi4py_the_error_names_the_extra():
    # mpi4py hidden (None in sys.modules makes its import fail), as in an install without the extra
    out = _python("import sys; sys.modules['mpi4py'] = None\n"
                  "from handprop.distributed import MPIUnavailableError, connect\n"
                  "try:\n    connect(True)\nexcept MPIUnavailableError as e:\n    print(e)")
    assert out.returncode == 0, out.stderr
    assert "distributed training needs mpi4py" in out.stdout and "pip install 'handprop[mpi]'" in out.stdout
    plain = _python("import sys; sys.modules['mpi4py'] = None\n"
                    "from handprop.distributed import connect\nprint(connect(None))")
    assert plain.stdout.strip() == "None", "a plain run never needs mpi4py"


def test_a_launcher_and_mpi_that_disagree_on_the_size_is_an_error(mpi):
    """mpi4py bound to another MPI than the launcher's: each process would train alone."""
    out = subprocess.run([sys.executable, "-c", "from handprop.distributed import connect; connect()"],
                         env=mpi.env(OMPI_COMM_WORLD_SIZE="3"), capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "DistributedError: OMPI_COMM_WORLD_SIZE=3 but MPI started 1 process(es)" in out.stderr


def _handprop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handprop", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_distributed_outside_a_launcher_is_a_one_line_usage_error(mpi, tmp_path):
    """As PyTorch's init_process_group outside torchrun: no world of one by accident."""
    done = _handprop("train", "--distributed", "--subset", "100", "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("handprop train: error: --distributed: this process was not started by an "
                                  "MPI launcher; start the processes with mpirun -n N"), done.stderr
    assert not (tmp_path / "run").exists()


def test_without_mpi4py_distributed_train_names_the_extra_in_one_line(tmp_path):
    hidden = tmp_path / "mpi4py"  # a package that fails to import, shadowing the real one
    hidden.mkdir()
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = _handprop("train", "--distributed", "--subset", "100", env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "distributed training needs mpi4py" in done.stderr and "pip install 'handprop[mpi]'" in done.stderr
