"""The ``handprop bench`` command: its flags, the session (threads, the peers, the header line),
the workloads in order (a quiet pass, then with ``--load`` the same under a competing process),
and the tables with their JSON.

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

WORKLOADS = ("train64", "train512", "compute", "infer", "cnn64", "cnninfer", "conv")
#: Workloads of the acceptance suite only; it is not installed, so ``--only`` points there.
ACCEPTANCE_ONLY = ("data", "startup", "memory", "train_load")
NOT_INSTALLED = ("data, startup, memory and train_load belong to the acceptance suite, which is not installed: "
                 "in a source checkout, run python benchmarks/acceptance.py")
RATIO_NOTE = ("ratio = handprop / pytorch, vs jax = handprop / the faster JAX column: below 1 handprop is faster "
              "in time per step or time, above 1 in GFLOP/s")
LOAD_NOTE = ("under load: each workload again while a competing process keeps one CPU busy with a NumPy "
             "matmul loop; (x) = time under load / quiet time, per library, threads chosen again")


def add_arguments(parser: argparse.ArgumentParser, workloads: tuple[str, ...] = WORKLOADS,
                  default: str = "all") -> None:
    """The ``handprop bench`` flags (the acceptance suite passes its own workloads)."""
    from ..cli import positive_int

    elsewhere = "" if set(ACCEPTANCE_ONLY) <= set(workloads) else f". {NOT_INSTALLED}"
    parser.add_argument("--quick", action="store_true", help="few steps and repeats (a smoke test, seconds)")
    parser.add_argument("--only", metavar="LIST", help=f"comma-separated workloads: {','.join(workloads)} "
                        f"(default: {default}){elsewhere}")
    parser.add_argument("--repeats", type=positive_int, metavar="N", help="timed runs per library (default 5; quick 2)")
    parser.add_argument("--threads", type=positive_int, metavar="N", help="threads for every library (default: "
                        "what handprop train chooses for each workload's model on the machine as it is)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--no-jax", action="store_true", help="leave JAX out (it runs when installed)")
    parser.add_argument("--load", action="store_true", help="then run every workload again with a competing "
                        "busy process and print each library's slowdown")
    parser.add_argument("--synthetic", action="store_true", help="random data instead of MNIST")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder holding the MNIST IDX files (default: the dataset search path)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    if workloads == WORKLOADS:  # the installed command (not the acceptance suite)
        parser.add_argument("--distributed", action="store_true", help="under mpirun: data-parallel step time, its "
                            "Allreduce time and share (MLPs, --model cnn), Allreduce by message size "
                            "(takes --quick, --repeats, --threads, --synthetic, --data-dir, --json)")


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
    use_jax: bool = False
    threads: int | None = None  # --threads; None: handprop's thread policy, per workload
    load: bool = False


def start(args: argparse.Namespace) -> Session:
    """Check the flags, find the peers, print the header line."""
    import importlib.metadata
    import importlib.util

    import numpy as np

    from ..threads import blas_pool, usable_cpus
    if args.json and not os.access(Path(args.json).resolve().parent, os.W_OK):
        raise UsageError(f"--json {args.json}: cannot write into {Path(args.json).resolve().parent}")
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch
        except ImportError:
            print("bench: PyTorch is not installed; leaving it out", file=sys.stderr)
            use_torch = False
    use_jax = not args.no_jax and importlib.util.find_spec("jax") is not None  # imported in its worker only
    pool = blas_pool()
    if pool is None:
        print("bench: threadpoolctl is not installed: NumPy's BLAS keeps the threads it started with "
              "(set OPENBLAS_NUM_THREADS)", file=sys.stderr)
    threads = f"threads {args.threads} (--threads)" if args.threads else "threads per workload as handprop train chooses"
    blas = f"{pool.get('internal_api')} {pool.get('version')}" if pool else "BLAS"
    print(f"handprop bench: numpy {np.__version__} ({blas}); {threads}"
          + (f"; torch {torch.__version__}" if use_torch else "")
          + (f"; jax {importlib.metadata.version('jax')} (in a worker process)" if use_jax else "")
          + f"; {usable_cpus()} CPUs; load average {os.getloadavg()[0]:.2f}"
          + ("; quick mode" if args.quick else ""), flush=True)
    return Session(args.quick, args.repeats or (2 if args.quick else 5), use_torch, args.data_dir, args.synthetic,
                   use_jax, args.threads, args.load)


def measure(session: Session, names: list[str]) -> list[Row]:
    """The rows of the workloads among ``names`` that this package runs, in workload order; with
    ``--load``, each row also holds every library's figure from a second pass under load (after
    the whole quiet pass, so the competing process leaves no trace in the quiet figures)."""
    from .dataset import load_data
    from .load import competing_process
    from .report import LIBRARIES
    if not set(names) & set(WORKLOADS):
        return []
    data = load_data(session.data_dir, session.synthetic)
    print(f"data: {data.source}", flush=True)
    rows = _one_pass(session, names, data, check=True)
    if session.load:
        print("under load: the same workloads with a competing busy process", flush=True)
        with competing_process():
            loaded = _one_pass(session, names, data, check=False)
        for row, under in zip(rows, loaded, strict=True):
            row.loaded = {label: value for label in LIBRARIES if (value := under.value(label)) is not None}
            row.extra["threads_loaded"] = under.extra.get("threads")
    return rows


def _one_pass(s: Session, names: list[str], data, check: bool) -> list[Row]:
    from .models import handprop_mlp
    from .workloads import bench_cnn, bench_cnn_infer, bench_compute, bench_conv, bench_infer, bench_train
    rows = []
    for number, workload, bs, quick_steps in ((1, "train64", 64, 150), (2, "train512", 512, 30)):
        if workload in names:
            steps = quick_steps if s.quick else 50000 // bs
            rows.append(bench_train(s, workload, f"{number} train 784-50-10 b{bs} ({steps} steps), per step", data,
                                    handprop_mlp((784, 50, 10)), bs, steps, 0.2, check))
    if "compute" in names:
        rows.extend(bench_compute(s, data, check))
    if "infer" in names:
        rows.append(bench_infer(s, data))
    if "cnn64" in names:
        rows.append(bench_cnn(s, data, check))
    if "cnninfer" in names:
        rows.append(bench_cnn_infer(s, data))
    if "conv" in names:
        rows.append(bench_conv(s, check))
    return rows


def print_report(rows: list[Row], json_path: str | None, note: str = RATIO_NOTE) -> int:
    """Print the table (and the load table, when measured; write the JSON); 1 when a comparison
    is VOID, else 0."""
    from .report import format_load_table, format_table, write_json
    print()
    print(format_table(rows))
    print(f"\n{note}")
    if any(r.loaded for r in rows):
        print()
        print(format_load_table(rows))
        print(f"\n{LOAD_NOTE}")
    void = [r.name for r in rows if r.agree is False]
    if void:
        print(f"VOID (the libraries computed different things): {', '.join(void)}")
    if json_path:
        write_json(rows, json_path)
    return 1 if void else 0


def run(args: argparse.Namespace) -> int:
    """``handprop bench``: the selected workloads and their table; 0 when every comparison is valid."""
    if args.synthetic and args.data_dir:
        raise UsageError("--synthetic trains on random data: drop --data-dir (or --synthetic)")
    if args.distributed:
        given = [flag for flag, value in (("--only", args.only), ("--no-torch", args.no_torch),
                                          ("--no-jax", args.no_jax), ("--load", args.load)) if value]
        if given:
            raise UsageError(f"--distributed times handprop's data-parallel step alone: drop {', '.join(given)}")
        from ..distributed.bench import run as run_distributed
        return run_distributed(args)
    names = selected(args.only)
    return print_report(measure(start(args), names), args.json)
