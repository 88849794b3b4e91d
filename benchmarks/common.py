"""Shared by the benchmark scripts: everything lives in :mod:`handprop.bench` (also behind
``handprop bench``); these scripts only choose the default workloads.

Run from the repository root, e.g. ``python benchmarks/bench_train.py [--quick]``; every script
takes the ``handprop bench`` flags (``--repeats``, ``--threads``, ``--no-torch``, ``--json``...).
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    from handprop import bench
except ImportError:  # not installed: use the source tree next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from handprop import bench

from handprop.bench import (Row, blas_threads, format_table, load_data, matmul_flops,  # noqa: F401,E402
                            sgemm_rate, set_blas_threads)


def entry(workloads: str) -> None:
    """``sys.exit(handprop bench --only <workloads> <argv>)``."""
    sys.exit(bench.main(sys.argv[1:], default_only=workloads))
