"""The ``handprop bench`` command: its flags, the run (workloads in order, the table, the JSON)
and the entry point of ``benchmarks/*.py``.

``handprop --help`` imports this module to build the parser, so it imports only
:mod:`.targets` at import time; the workload modules load inside :func:`run`.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .targets import DEFAULT_WORKLOADS, TARGETS, WORKLOADS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``handprop bench`` flags (also used by ``benchmarks/*.py``)."""
    parser.add_argument("--quick", action="store_true", help="few steps and repeats (a smoke test, seconds)")
    parser.add_argument("--only", metavar="LIST", help=f"comma-separated workloads: {','.join(WORKLOADS)} "
                        f"(default: all but memory)")
    from ..cli import positive_int

    parser.add_argument("--repeats", type=positive_int, metavar="N", help="timed runs per library (default 5; quick 2)")
    parser.add_argument("--threads", type=positive_int, metavar="N", help="threads for NumPy's BLAS and PyTorch "
                        "(default: what NumPy's BLAS uses)")
    parser.add_argument("--no-torch", action="store_true", help="time handprop only")
    parser.add_argument("--synthetic", action="store_true", help="random data instead of MNIST")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder holding the MNIST IDX files (default: the dataset search path)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")


def _selected(args: argparse.Namespace) -> list[str]:
    if not getattr(args, "only", None):
        return list(DEFAULT_WORKLOADS)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; expected {', '.join(WORKLOADS)}")
    return names


def run(args: argparse.Namespace) -> int:
    """Run the selected workloads, print the table; 0 when every comparison is valid."""
    import numpy as np

    from .dataset import bench_data_script, load_data
    from .memory import bench_memory
    from .report import Row, format_table, write_json
    from .startup import bench_startup
    from .threads import blas_threads, set_blas_threads
    from .workloads import bench_compute, bench_infer, bench_train
    selected = _selected(args)
    json_path = getattr(args, "json", None)
    if json_path and not os.access(Path(json_path).resolve().parent, os.W_OK):
        raise ValueError(f"--json {json_path}: cannot write into {Path(json_path).resolve().parent}")
    quick = bool(getattr(args, "quick", False))
    repeats = getattr(args, "repeats", None) or (2 if quick else 5)
    data_dir = getattr(args, "data_dir", None)
    use_torch = not getattr(args, "no_torch", False)
    if use_torch:
        try:
            import torch
        except ImportError:
            print("bench: PyTorch is not installed; timing handprop alone", file=sys.stderr)
            use_torch = False
    threads = getattr(args, "threads", None)
    if threads and not set_blas_threads(threads):
        print("bench: threadpoolctl is not installed: NumPy's BLAS threads are fixed at start-up "
              "(set OPENBLAS_NUM_THREADS)", file=sys.stderr)
    n_threads, how = blas_threads()
    if use_torch:
        torch.set_num_threads(n_threads)
    print(f"handprop bench: numpy {np.__version__}, BLAS threads {n_threads} ({how})"
          + (f"; torch {torch.__version__}, threads {torch.get_num_threads()}" if use_torch else "")
          + f"; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}"
          + ("; quick mode" if quick else ""), flush=True)

    rows: list[Row] = []
    data = None
    if any(w in selected for w in ("train64", "train512", "compute", "infer")):
        data = load_data(data_dir, getattr(args, "synthetic", False))
        print(f"data: {data.source}", flush=True)
    if "train64" in selected:
        steps = 150 if quick else 50000 // 64
        rows.append(bench_train(f"1 train 784-50-10 b64 ({steps} steps), per step", data, (784, 50, 10), 64,
                                steps, 0.2, repeats, use_torch))
        rows[-1].target = f"<= {TARGETS['train64']}x"
    if "train512" in selected:
        steps = 30 if quick else 50000 // 512
        rows.append(bench_train(f"2 train 784-50-10 b512 ({steps} steps), per step", data, (784, 50, 10), 512,
                                steps, 0.2, repeats, use_torch))
        rows[-1].target = f"<= {TARGETS['train512']}x"
    if "compute" in selected:
        rows.extend(bench_compute(data, quick, repeats, use_torch))
    if "infer" in selected:
        rows.append(bench_infer(data, repeats * (2 if quick else 4), use_torch))
    if "data" in selected:
        row = bench_data_script(quick, data_dir)
        if row is not None:
            rows.append(row)
    if "startup" in selected:
        rows.extend(bench_startup(3 if quick else 7, use_torch))
    if "memory" in selected:
        rows.append(bench_memory(data_dir, use_torch))

    for r in rows:
        if r.met is None and r.ratio is not None and r.target.startswith("<="):
            r.met = r.ratio <= float(r.target.split()[1].rstrip("x")) and r.extra.get("loss_ok", True)
    print()
    print(format_table(rows))
    print("\nratio = handprop / pytorch (time per step, time, or peak RSS; for GFLOP/s higher is better; "
          "for workload 3 the target is a time ratio <= 1.0, i.e. at least PyTorch's throughput).")
    void = [r.name for r in rows if r.extra.get("loss_ok") is False]
    if void:
        print(f"VOID (handprop and PyTorch computed different things): {', '.join(void)}")
    if getattr(args, "json", None):
        write_json(rows, args.json)
    return 1 if void else 0


def main(argv: list[str] | None = None, default_only: str | None = None) -> int:
    """Entry point of ``benchmarks/*.py``: the ``handprop bench`` flags, another default ``--only``."""
    from . import __doc__ as package_doc
    parser = argparse.ArgumentParser(prog=Path(sys.argv[0]).name, description=package_doc.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if default_only and not args.only:
        args.only = default_only
    return run(args)
