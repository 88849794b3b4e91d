"""What watching costs: one epoch of the default MLP (784-256-10 ReLU, AdamW, batch 64, 50,000
MNIST images) without hooks, with ``ActivationStats`` on every layer, and (``--baseline-src``)
on another checkout without hook support at all.

Each timing runs in a fresh interpreter with one BLAS thread; the variants alternate
(A B C A B C ...) so a neighbour's load hits them alike. Prints medians and ranges of the
wall time and of the process's CPU time (which a busy neighbour on a shared machine disturbs
less: the wall time counts the moments the process waits for a core).

    HANDPROP_DATA=../shared/data python benchmarks/bench_stats.py [--rounds 5] [--every 1 --every 4]
        [--baseline-src ../main/src]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def child(variant: str) -> None:
    """Train one epoch and print {"fit": wall s, "cpu": CPU s, "write": s} as JSON; ``variant``
    is "plain" or "stats:<every>"."""
    import numpy as np

    from handprop import nn, optim
    from handprop.data import ArrayDataset, DataLoader, Normalize, mnist, to_float_flat
    from handprop.train import Learner, Recorder

    (x, y), _ = mnist(download=False)
    x = to_float_flat(x[:50_000])
    Normalize().fit(x)(x, out=x)
    model = nn.Sequential(nn.Linear(784, 256, init="kaiming_normal", rng=0), nn.ReLU(),
                          nn.Linear(256, 10, init="kaiming_normal", rng=1))
    callbacks = [Recorder()]
    if variant != "plain":
        from handprop.train.stats import ActivationStats
        stats = ActivationStats(every=int(variant.partition(":")[2]))
        callbacks.append(stats)
    learn = Learner(model, nn.CrossEntropyLoss(), optim.AdamW(model.parameters(), lr=3e-3),
                    DataLoader(ArrayDataset(x, y[:50_000].astype(np.int64)), 64, shuffle=True, rng=0),
                    None, callbacks)
    start, cpu = time.perf_counter(), time.process_time()
    learn.fit(1)
    fit, cpu = time.perf_counter() - start, time.process_time() - cpu
    write = 0.0
    if variant != "plain":
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            stats.write(out)
            write = time.perf_counter() - start
    print(json.dumps({"fit": fit, "cpu": cpu, "write": write}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, help="a src/ folder without hooks (e.g. ../main/src)")
    parser.add_argument("--every", type=int, action="append", metavar="N",
                        help="time ActivationStats(every=N) (repeat for several; default 1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    variants = [("plain", SRC, "plain")] + [(f"stats every={n}", SRC, f"stats:{n}") for n in args.every or [1]]
    if args.baseline_src:
        variants.insert(0, ("no-hooks checkout", args.baseline_src.resolve(), "plain"))
    results: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    for r in range(args.rounds):
        for name, src, variant in variants:
            env = {**os.environ, "PYTHONPATH": str(src), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
            out = subprocess.run([sys.executable, __file__, "--child", variant], env=env, check=True,
                                 capture_output=True, text=True).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1]))
            print(f"round {r + 1} {name:18s} wall {results[name][-1]['fit']:.3f} s, "
                  f"CPU {results[name][-1]['cpu']:.3f} s", flush=True)
    for clock in ("fit", "cpu"):
        print(f"{'wall' if clock == 'fit' else 'CPU'} time of the epoch:")
        plain = [t[clock] for t in results["plain"]]
        for name, runs in results.items():
            times = [t[clock] for t in runs]
            paired = [t / p - 1 for t, p in zip(times, plain)]  # the same round: the same neighbours' load
            print(f"  {name:18s} median {statistics.median(times):.3f} s (range {min(times):.3f}-{max(times):.3f}, "
                  f"{len(times)} runs); vs plain in the same round: median {statistics.median(paired):+.1%} "
                  f"(range {min(paired):+.1%} to {max(paired):+.1%})")
    writes = [t["write"] for name, runs in results.items() if name.startswith("stats") for t in runs]
    print(f"stats.json + stats.png after the epoch: median {statistics.median(writes):.3f} s")


if __name__ == "__main__":
    main()
