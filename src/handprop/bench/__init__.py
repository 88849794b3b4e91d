"""``handprop bench``: handprop against PyTorch and JAX, side by side.

Workloads (``--only`` takes their names, comma-separated; default: all seven):

1. ``train64``  the notebooks' MLP 784-50-10, ReLU, cross-entropy, SGD, batch 64, one epoch of 50,000
2. ``train512`` the same at batch 512
3. ``compute``  a compute-bound MLP 784-1024-1024-10, batch 512, reported in GFLOP/s against the
   float32 matrix-multiply rate this machine reaches on a square sgemm (timed here too)
4. ``infer``    forward only of workload 1's model over the 10,000 test images
9. ``cnn64``    the ``handprop train --model cnn`` network (as :mod:`handprop.train.build` makes it:
   3x3 convs with BatchNorm and ReLU, global average pool, Linear), SGD, batch 64, 100 steps
10. ``cnninfer`` that network in eval mode over the 10,000 test images, in batches of 1000
11. ``conv``    one Conv2d 32 -> 64, 3x3, padding 1, forward + backward (with dL/dx) at batch 64, 28x28

This is a measuring tool, with no targets. The acceptance suite (these rows against their
targets, plus 5 ``data`` loading MNIST, 6 ``startup`` and 7 ``memory``) is not installed: it
lives in a source checkout, ``python benchmarks/acceptance.py``, and reuses this package;
``handprop bench --only data`` says so and exits 2.

Fairness rules. Every library gets the same data (real MNIST when found, else random data of the
same shape, flagged), the same batches in the same order, the same initial weights (PyTorch's
layers are built from handprop's by its PyTorch exporter, :func:`handprop.interop.torch_definition`
and ``to_torch_state``; JAX takes handprop's arrays), the same
hyperparameters and the same number of threads: ``--threads N``, else what ``handprop train``
would choose for the workload's model on the machine as it is (:mod:`handprop.threads`).
handprop and PyTorch run in this process; JAX, when installed (``--no-jax`` leaves it out), in a
worker process started per workload, because its threads and float64 switch are fixed when it
loads (:mod:`.worker`); it is timed two ways, a jitted step per batch and a ``lax.scan`` epoch
(:mod:`.jax_peer`). Runs alternate A B A B after one untimed warm-up of each and the table shows
medians. Each training workload also checks that the libraries computed the same thing (:mod:`.agreement`);
a workload that fails the check is marked VOID. ``--load`` then runs every workload again with a
competing busy process (:mod:`.load`) and prints each library's slowdown against its quiet run.

PyTorch and JAX are imported only inside the functions that time them, and nothing here imports
anything heavy at import time (``handprop --help`` loads :mod:`.cli` to build the parser): the
names below other than ``add_arguments`` and ``run`` load their module on first use.

Modules: :mod:`.cli` (flags, session, the two passes, the printed tables), :mod:`.report` (rows,
tables, JSON), :mod:`.timing` (the A B A B protocol), :mod:`.dataset` (the arrays), :mod:`.models`
(the MLP, the CNN, their PyTorch twins), :mod:`.loops` (handprop's and PyTorch's training loops),
:mod:`.jax_peer` (JAX's), :mod:`.worker` (a library in its own process), :mod:`.agreement` (the loss
check), :mod:`.load` (the competing process), :mod:`.workloads` (workloads 1-4 and 9-11; 5-8 are the
acceptance suite's).
"""
from __future__ import annotations

from .cli import add_arguments, run

# Everything else loads its module on first use (PEP 562), so ``handprop --help`` reads only
# this file and ``cli``.
_LAZY = {
    "cli": ("WORKLOADS", "Session", "measure", "print_report", "selected", "start"),
    "report": ("median", "Row", "LIBRARIES", "format_table", "format_load_table", "write_json"),
    "dataset": ("Data", "load_data", "mnist_folder"),
    "models": ("handprop_mlp", "handprop_cnn", "torch_twin"),
    "loops": ("train_handprop", "train_torch"),
    "agreement": ("loss_diff", "check_losses", "array_diff"),
    "load": ("competing_process",),
    "workloads": ("float64_losses", "bench_train", "matmul_flops", "sgemm_rate", "bench_compute", "bench_infer",
                  "infer_row", "bench_cnn", "bench_cnn_infer", "bench_conv"),
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
