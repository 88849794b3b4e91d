"""``handprop bench``: handprop against PyTorch, side by side, in one process.

Workloads (``--only`` takes their names, comma-separated; default: all four):

1. ``train64``  the notebooks' MLP 784-50-10, ReLU, cross-entropy, SGD, batch 64, one epoch of 50,000
2. ``train512`` the same at batch 512
3. ``compute``  a compute-bound MLP 784-1024-1024-10, batch 512, reported in GFLOP/s against the
   float32 matrix-multiply rate this machine reaches on a square sgemm (timed here too)
4. ``infer``    forward only of workload 1's model over the 10,000 test images

This is a measuring tool, with no targets. The acceptance suite (these rows against their
targets, plus 5 ``data`` loading MNIST, 6 ``startup`` and 7 ``memory``) is not installed: it
lives in a source checkout, ``python benchmarks/acceptance.py``, and reuses this package;
``handprop bench --only data`` says so and exits 2.

Fairness rules. Both libraries get the same data (real MNIST when found, else random data of the
same shape, flagged), the same batches in the same order, the same initial weights (PyTorch's
layers are built from handprop's: ``torch weight = W.T``), the same hyperparameters and the same
number of threads: NumPy's BLAS thread count is read (threadpoolctl when installed, else the
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` variables, else the CPU count)
and ``torch.set_num_threads`` is set to it; ``--threads N`` sets both (the NumPy side needs
threadpoolctl; without it set ``OPENBLAS_NUM_THREADS=N`` before starting). Runs alternate
A B A B after one untimed warm-up of each and the table shows medians. Each training workload
also checks that both libraries computed the same thing: the same losses at every step of an
untimed float64 run, and in the first steps of the timed float32 runs (after that, float32
rounding at ReLU kinks makes the trajectories drift apart; see :mod:`.workloads`). A workload
that fails the check is marked VOID.

PyTorch is imported only inside the functions that time it, and nothing here imports anything
heavy at import time (``handprop --help`` loads :mod:`.cli` to build the parser): the names
below other than ``add_arguments`` and ``run`` load their module on first use.

Modules: :mod:`.cli` (flags, session, workload order, the printed table), :mod:`.report`
(rows, table, JSON), :mod:`.threads` (BLAS threads), :mod:`.timing` (the A B A B protocol),
:mod:`.dataset` (the arrays), :mod:`.models` (the MLPs in both libraries), :mod:`.workloads`
(workloads 1-4 and the loss check).
"""
from __future__ import annotations

from .cli import add_arguments, run

# Everything else loads its module on first use (PEP 562), so ``handprop --help`` reads only
# this file and ``cli``.
_LAZY = {
    "cli": ("WORKLOADS", "Session", "measure", "print_report", "selected", "start"),
    "report": ("median", "Row", "format_table", "write_json"),
    "threads": ("blas_threads", "set_blas_threads"),
    "dataset": ("Data", "load_data", "mnist_folder"),
    "models": ("handprop_mlp", "torch_mlp"),
    "workloads": ("train_handprop", "train_torch", "loss_diff", "float64_losses", "check_losses",
                  "bench_train", "matmul_flops", "sgemm_rate", "bench_compute", "bench_infer"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["add_arguments", "run", *sorted(_WHERE)]


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
