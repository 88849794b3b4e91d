"""The measurement behind handprop's thread policy (:mod:`handprop.threads`): one training step of
784-H-10 MLPs over a range of sizes, with 1 BLAS thread and with every CPU, quiet and (``--load``)
with a competing busy process; the speed-up of the threads and the work where it starts to pay.

    python benchmarks/thread_policy.py [--hidden 50,128,...] [--batch 64,512] [--rounds 5] [--load]

Per size: ``--rounds`` rounds alternating 1 thread / all threads in this process, each round a
few hundred milliseconds of SGD steps; the minimum time per step of each (robust to load spikes)
and their ratio. Work = batch x parameters (multiply-adds of a forward), as the policy counts it.
"""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import nullcontext

try:
    import numpy as np

    from handprop.bench.load import competing_process
    from handprop.bench.loops import train_handprop
    from handprop.bench.models import copy_model, handprop_mlp
    from handprop.bench.workloads import forward_work
    from handprop.threads import MIN_PARALLEL_WORK, set_num_threads, usable_cpus
except ImportError as exc:
    print(f"thread_policy.py: error: {exc} (pip install -e . or set PYTHONPATH=src)", file=sys.stderr)
    sys.exit(2)


def step_seconds(init, x, y, bs: int, threads: int, budget: float = 0.3) -> float:
    """Seconds per SGD step with ``threads`` BLAS threads, over about ``budget`` seconds of steps."""
    set_num_threads(threads)
    steps = max(3, min(len(x) // bs, int(budget / (6e-11 * 6 * forward_work(init, bs)))))
    seconds, _ = train_handprop(copy_model(init), x, y, bs, steps, 0.01)
    return seconds / steps


def sweep(hidden: list[int], batches: list[int], rounds: int, cpus: int) -> list[tuple[int, int, int, float, float]]:
    """(hidden, batch, work, best seconds per step with 1 thread, with ``cpus`` threads) per size."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((25_000, 784), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    out = []
    for h in hidden:
        for bs in batches:
            init = handprop_mlp((784, h, 10))
            step_seconds(init, x, y, bs, cpus, 0.05)  # warm-up
            one, many = [], []
            for _ in range(rounds):
                one.append(step_seconds(init, x, y, bs, 1))
                many.append(step_seconds(init, x, y, bs, cpus))
            out.append((h, bs, forward_work(init, bs), min(one), min(many)))
            print(f"  784-{h}-10 b{bs}: work {out[-1][2] / 1e6:7.1f}M  1 thread {min(one) * 1e6:9.0f} us  "
                  f"{cpus} threads {min(many) * 1e6:9.0f} us  speed-up {min(one) / min(many):.2f}x", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="50,128,256,512,1024,2048")
    parser.add_argument("--batch", default="64,512")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--load", action="store_true", help="with a competing busy process")
    args = parser.parse_args()
    cpus = usable_cpus()
    print(f"{cpus} CPUs, load average {os.getloadavg()[0]:.2f}, policy threshold {MIN_PARALLEL_WORK / 1e6:.0f}M"
          + (", with a competing busy process" if args.load else ", quiet"), flush=True)
    with competing_process() if args.load else nullcontext():
        rows = sweep([int(h) for h in args.hidden.split(",")], [int(b) for b in args.batch.split(",")],
                     args.rounds, cpus)
    paying = sorted(work for _, _, work, one, many in rows if one / many >= 1.1)
    print(f"threads pay (>= 1.1x) from {paying[0] / 1e6:.0f}M multiply-adds" if paying else "threads never pay here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
