"""The ``handprop bench`` command: its flags, the session (threads, PyTorch, the header line),
the workloads in order, and the table with its JSON.

``handprop --help`` imports this module to build the parser, so it imports nothing from
this package at import time; the workload modules load inside :func:`measure`. The acceptance
suite of a source checkout (``benchmarks/acceptance.py``) reuses these pieces.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from .report import Row

WORKLOADS = ("train64", "train512", "compute", "infer")
#: Workloads of the acceptance suite only; it is not installed, so ``--only`` points there.
ACCEPTANCE_ONLY = ("data", "startup", "memory")
NOT_INSTALLED = ("data, startup and memory belong to the acceptance suite, which is not installed: "
                 "in a source checkout, run python benchmarks/acceptance.py")
RATIO_NOTE = "ratio = handprop / pytorch: below 1 handprop is faster in time per step or time, above 1 in GFLOP/s"


def add_arguments(parser: argparse.ArgumentParser, workloads: tuple[str, ...] = WORKLOADS,
                  default: str = "all") -> None:
    """The ``handprop bench`` flags (the acceptance suite passes its own workloads)."""
    from ..cli import positive_int

    elsewhere = "" if set(ACCEPTANCE_ONLY) <= set(workloads) else f". {NOT_INSTALLED}"
    parser.add_argument("--quick", action="store_true", help="few steps and repeats (a smoke test, seconds)")
    parser.add_argument("--only", metavar="LIST", help=f"comma-separated workloads: {','.join(workloads)} "
                        f"(default: {default}){elsewhere}")
    parser.add_argument("--repeats", type=positive_int, metavar="N", help="timed runs per library (default 5; quick 2)")
    parser.add_argument("--threads", type=positive_int, metavar="N", help="threads for NumPy's BLAS and PyTorch "
                        "(default: what NumPy's BLAS uses)")
    parser.add_argument("--no-torch", action="store_true", help="time handprop only")
    parser.add_argument("--synthetic", action="store_true", help="random data instead of MNIST")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder holding the MNIST IDX files (default: the dataset search path)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")


def selected(only: str | None, workloads: tuple[str, ...] = WORKLOADS,
             default: tuple[str, ...] | None = None) -> list[str]:
    """The workloads ``--only`` names, in the order given (``default``, else all, without it)."""
    if not only:
        return list(workloads if default is None else default)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in workloads]
    if unknown and set(unknown) <= set(ACCEPTANCE_ONLY):
        raise UsageError(f"--only {','.join(unknown)}: {NOT_INSTALLED} --only {','.join(names)}")
    if unknown or not names:
        raise UsageError(f"--only: unknown workload(s) {', '.join(unknown) or repr(only)}; "
                         f"expected a comma-separated list of {', '.join(workloads)}")
    return names


@dataclass
class Session:
    """What every workload of one run shares."""

    quick: bool
    repeats: int
    use_torch: bool
    data_dir: str | None
    synthetic: bool


def start(args: argparse.Namespace) -> Session:
    """Check the flags, set the threads of both libraries, print the header line."""
    import numpy as np

    from .threads import blas_threads, set_blas_threads
    if args.json and not os.access(Path(args.json).resolve().parent, os.W_OK):
        raise UsageError(f"--json {args.json}: cannot write into {Path(args.json).resolve().parent}")
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch
        except ImportError:
            print("bench: PyTorch is not installed; timing handprop alone", file=sys.stderr)
            use_torch = False
    if args.threads and not set_blas_threads(args.threads):
        print("bench: threadpoolctl is not installed: NumPy's BLAS threads are fixed at start-up "
              "(set OPENBLAS_NUM_THREADS)", file=sys.stderr)
    n_threads, how = blas_threads()
    if use_torch:
        torch.set_num_threads(n_threads)
    print(f"handprop bench: numpy {np.__version__}, BLAS threads {n_threads} ({how})"
          + (f"; torch {torch.__version__}, threads {torch.get_num_threads()}" if use_torch else "")
          + f"; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}"
          + ("; quick mode" if args.quick else ""), flush=True)
    return Session(args.quick, args.repeats or (2 if args.quick else 5), use_torch, args.data_dir, args.synthetic)


def measure(session: Session, names: list[str]) -> list[Row]:
    """The rows of the workloads among ``names`` that this package runs, in workload order."""
    from .dataset import load_data
    from .workloads import bench_compute, bench_infer, bench_train
    s, rows = session, []
    if not set(names) & set(WORKLOADS):
        return rows
    data = load_data(s.data_dir, s.synthetic)
    print(f"data: {data.source}", flush=True)
    for number, workload, bs, quick_steps in ((1, "train64", 64, 150), (2, "train512", 512, 30)):
        if workload in names:
            steps = quick_steps if s.quick else 50000 // bs
            rows.append(bench_train(workload, f"{number} train 784-50-10 b{bs} ({steps} steps), per step", data,
                                    (784, 50, 10), bs, steps, 0.2, s.repeats, s.use_torch))
    if "compute" in names:
        rows.extend(bench_compute(data, s.quick, s.repeats, s.use_torch))
    if "infer" in names:
        rows.append(bench_infer(data, s.repeats * (2 if s.quick else 4), s.use_torch))
    return rows


def print_report(rows: list[Row], json_path: str | None, note: str = RATIO_NOTE) -> int:
    """Print the table (and write the JSON); 1 when a comparison is VOID, else 0."""
    from .report import format_table, write_json
    print()
    print(format_table(rows))
    print(f"\n{note}")
    void = [r.name for r in rows if r.agree is False]
    if void:
        print(f"VOID (handprop and PyTorch computed different things): {', '.join(void)}")
    if json_path:
        write_json(rows, json_path)
    return 1 if void else 0


def run(args: argparse.Namespace) -> int:
    """``handprop bench``: the selected workloads and their table; 0 when every comparison is valid."""
    names = selected(args.only)
    if args.synthetic and args.data_dir:
        raise UsageError("--synthetic trains on random data: drop --data-dir (or --synthetic)")
    return print_report(measure(start(args), names), args.json)
