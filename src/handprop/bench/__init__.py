"""``handprop bench``: handprop against PyTorch, side by side, in one process.

Workloads (``--only`` takes their names, comma-separated):

1. ``train64``  the notebooks' MLP 784-50-10, ReLU, cross-entropy, SGD, batch 64, one epoch of 50,000
2. ``train512`` the same at batch 512
3. ``compute``  a compute-bound MLP 784-1024-1024-10, batch 512, reported in GFLOP/s against the
   float32 matrix-multiply rate this machine reaches on a square sgemm (timed here too)
4. ``infer``    forward only of workload 1's model over the 10,000 test images
5. ``data``     loading + normalising MNIST (``benchmarks/bench_data.py``, when present)
6. ``startup``  ``import handprop`` and ``handprop --help``, each in a fresh interpreter
7. ``memory``   peak RSS of ``handprop train`` (defaults) vs the equivalent PyTorch script

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

The workloads live in this package; ``benchmarks/*.py`` are thin entry points. PyTorch is
imported only inside the functions that time it, and nothing here imports anything heavy at
import time (``handprop --help`` loads :mod:`.cli` to build the parser): the names below other
than ``add_arguments``, ``run`` and ``main`` load their module on first use.

Modules: :mod:`.targets` (workload names, targets), :mod:`.report` (rows, table, JSON),
:mod:`.threads` (BLAS threads), :mod:`.timing` (the A B A B protocol), :mod:`.dataset` (the
arrays, workload 5), :mod:`.models` (the MLPs in both libraries), :mod:`.workloads`
(workloads 1-4), :mod:`.children` (fresh interpreters), :mod:`.startup` (workload 6),
:mod:`.memory` (workload 7), :mod:`.cli` (the command).
"""
from __future__ import annotations

from .cli import add_arguments, main, run

# Everything else loads its module on first use (PEP 562), so ``handprop --help`` reads only
# this file, ``cli`` and ``targets``.
_LAZY = {
    "targets": ("WORKLOADS", "DEFAULT_WORKLOADS", "TARGETS"),
    "report": ("median", "Row", "format_table", "write_json"),
    "threads": ("blas_threads", "set_blas_threads"),
    "dataset": ("Data", "load_data", "bench_data_script"),
    "models": ("handprop_mlp", "torch_mlp"),
    "workloads": ("train_handprop", "train_torch", "loss_diff", "float64_loss_diff", "bench_train", "matmul_flops",
                  "sgemm_rate", "bench_compute", "bench_infer"),
    "startup": ("bench_startup",),
    "memory": ("bench_memory",),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["DEFAULT_WORKLOADS", "TARGETS", "WORKLOADS", "Data", "Row", "add_arguments",
           "bench_compute", "bench_data_script", "bench_infer", "bench_memory", "bench_startup",
           "bench_train", "blas_threads", "float64_loss_diff", "format_table", "handprop_mlp", "load_data", "loss_diff",
           "main", "matmul_flops", "median", "run", "set_blas_threads", "sgemm_rate", "torch_mlp",
           "train_handprop", "train_torch", "write_json"]


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
