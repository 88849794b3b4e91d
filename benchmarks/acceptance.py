"""The acceptance suite: handprop bench's workloads, data loading, start-up, memory and training
under load, with targets.

Each row is judged against its target (:mod:`targets`):

1-4 ``train64``, ``train512``, ``compute``, ``infer``: timed by the installed ``handprop.bench``
    (the same code as ``handprop bench``), here with their targets
5 ``data``     loading + normalising MNIST (``bench_data.py`` in a child process)
6 ``startup``  ``import handprop`` and ``handprop --help``, each in fresh interpreters
7 ``memory``   peak RSS of ``handprop train`` (defaults, and ``--model cnn --epochs 1``) vs the
               equivalent PyTorch script
               (minutes: not in the default set)
8 ``train_load`` ``handprop train --epochs 1`` quiet and under a competing busy process, with the
               thread policy and with the BLAS default, vs PyTorch (minutes: not in the default set)

Run from a source checkout with handprop importable (``pip install -e .``, or ``PYTHONPATH=src``):

    python benchmarks/acceptance.py [--quick] [--only LIST] [--repeats N] [--threads N] [--json PATH]

It takes the ``handprop bench`` flags; exit status 1 when a comparison is VOID, 2 on bad input.
"""
from __future__ import annotations

import argparse
import sys

try:
    from handprop.bench import cli as bench
except ImportError as exc:
    print(f"acceptance.py: error: handprop is not importable ({exc}); pip install -e . or set PYTHONPATH=src",
          file=sys.stderr)
    sys.exit(2)

from data_load import bench_data_load  # noqa: E402  (after the check above)
from memory import bench_memory  # noqa: E402
from train_load import bench_train_load  # noqa: E402
from startup import bench_startup  # noqa: E402
from targets import judge  # noqa: E402

WORKLOADS = (*bench.WORKLOADS, *bench.ACCEPTANCE_ONLY)
DEFAULT_WORKLOADS = tuple(w for w in WORKLOADS if w not in ("memory", "train_load"))
NOTE = (bench.RATIO_NOTE + "; peak RSS: below 1 handprop uses less memory. For workload 3 the target is a "
        "time ratio <= 1.0, i.e. at least PyTorch's throughput; 'met' needs the comparison to be valid.")


def run(args: argparse.Namespace, default: tuple[str, ...] = DEFAULT_WORKLOADS) -> int:
    """Measure the selected workloads, judge them against their targets, print the table."""
    names = bench.selected(args.only, WORKLOADS, default)
    session = bench.start(args)
    rows = bench.measure(session, names)
    if "data" in names:
        rows.append(bench_data_load(session.quick, session.data_dir))
    if "startup" in names:
        rows.extend(bench_startup(3 if session.quick else 7, session.use_torch))
    if "memory" in names:
        rows.extend(bench_memory(session.data_dir, session.use_torch))
    if "train_load" in names:
        rows.extend(bench_train_load(session.data_dir, session.repeats))
    judge(rows)
    return bench.print_report(rows, args.json, NOTE)


def main(argv: list[str] | None = None, default: tuple[str, ...] = DEFAULT_WORKLOADS) -> int:
    """The command line; ``default`` is the workloads run without ``--only`` (the bench_*.py scripts)."""
    parser = argparse.ArgumentParser(prog=f"benchmarks/{sys.argv[0].rsplit('/', 1)[-1]}",
                                     description=__doc__.splitlines()[0])
    bench.add_arguments(parser, WORKLOADS, ",".join(default))
    args = parser.parse_args(argv)
    try:
        return run(args, default)
    except ValueError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
