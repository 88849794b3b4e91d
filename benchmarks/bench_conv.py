"""Conv2d speed against PyTorch: one layer's forward+backward, and the cnn's training step, each
library (and optionally an older handprop) in its own fresh process per run.

* ``conv``: Conv2d(32 -> 64, 3x3, padding 1, no bias) on (64, 32, 28, 28) float32: forward, then
  backward with dL/dx (what a conv inside a network does);
* ``cnn``: one SGD step (forward, cross-entropy, backward, update) of the ``handprop train --model
  cnn`` network (:func:`handprop.bench.models.handprop_cnn`) at batch 64 on MNIST-shaped random images.

PyTorch's network is handprop's exported twin (:func:`handprop.bench.models.torch_twin`: same
weights), both see the same batches and the same number of threads (NumPy's BLAS via
threadpoolctl, ``torch.set_num_threads``), and each runs in its own fresh process, alternating
handprop, [handprop --before], PyTorch, handprop, ... for ``--rounds`` rounds, so a busy machine
slows all alike. A child times ``--steps`` steps after a warm-up and reports the median step; the
parent prints per-library medians and ranges over the rounds, and the ratio handprop / PyTorch per
round (median and range), by wall clock and by CPU time (all threads; on a shared machine the
single-thread CPU time is the steadier figure). The first step's loss (cnn) or output sum (conv)
must agree between the libraries (else the row is marked VOID). ``--before DIR`` adds a column
for the handprop importable from DIR (e.g. ``git archive <commit> src | tar -x -C DIR``, then
``DIR/src``): a before/after table from one alternating run.

    python benchmarks/bench_conv.py [--rounds 7] [--steps 20] [--threads 1 2] [--only conv cnn] [--before DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BATCH, SEED = 64, 0
WORKLOADS = ("conv", "cnn")


def handprop_model(workload: str):
    """The handprop network of ``workload``, seeded."""
    from handprop import nn
    from handprop.bench.models import handprop_cnn

    if workload == "conv":
        return nn.Sequential(nn.Conv2d(32, 64, 3, padding=1, bias=False, rng=SEED))
    return handprop_cnn(SEED)


def batches(workload: str, count: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (input, upstream gradient) pairs for ``conv``, (images, labels) for ``cnn``."""
    rng = np.random.default_rng(SEED)
    if workload == "conv":
        return [(rng.standard_normal((BATCH, 32, 28, 28), dtype=np.float32),
                 rng.standard_normal((BATCH, 64, 28, 28), dtype=np.float32)) for _ in range(count)]
    return [(rng.standard_normal((BATCH, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, BATCH))
            for _ in range(count)]


def handprop_step(workload: str):
    """step(i) -> the output (conv) or the loss (cnn) of batch i."""
    from handprop import nn, optim

    model, data = handprop_model(workload), batches(workload)
    if workload == "conv":
        conv = model[0]

        def step(i: int):
            x, g = data[i % len(data)]
            out = conv(x)
            conv.backward(g)  # with dL/dx, as a conv inside a network
            conv.zero_grad()
            return out
        return step
    crit, opt = nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05)

    def step(i: int):
        x, y = data[i % len(data)]
        loss = crit(model(x), y)
        model.backward(crit.backward(), input_grad=False)
        opt.step()
        opt.zero_grad()
        return loss
    return step


def torch_step(workload: str):
    import torch

    from handprop.bench.models import torch_twin
    model = torch_twin(handprop_model(workload))  # handprop's exporter: the same weights
    data = [tuple(torch.from_numpy(a) for a in pair) for pair in batches(workload)]
    if workload == "conv":
        conv = model[0]
        data = [(x.requires_grad_(), g) for x, g in data]  # leaves, so backward computes dL/dx too

        def step(i: int):
            x, g = data[i % len(data)]
            out = conv(x)
            out.backward(g)
            conv.zero_grad()
            x.grad = None
            return out
        return step
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def step(i: int):
        x, y = data[i % len(data)]
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def child(library: str, workload: str, threads: int, steps: int) -> None:
    """Time ``steps`` steps in this process; print JSON {the first step's output sum or loss, median
    wall seconds, median CPU seconds (all threads)}."""
    if library == "torch":
        import torch
        torch.set_num_threads(threads)
        step = torch_step(workload)
    else:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads, user_api="blas")
        step = handprop_step(workload)
    out = step(0)
    first = float(np.sum(np.asarray(out.detach() if library == "torch" else out, dtype=np.float64)))
    for i in range(1, 4):
        step(i)
    times, cpu = [], []
    for i in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step(i)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(json.dumps({"loss": first, "seconds": statistics.median(times), "cpu": statistics.median(cpu)}))


def run_child(library: str, workload: str, threads: int, steps: int, before: str | None = None) -> dict:
    """One timed child; ``before``: the ``handprop`` column run with DIR first on its import path."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "torch" if library == "torch" else "handprop",
           "--only", workload, "--threads", str(threads), "--steps", str(steps)]
    env = dict(os.environ)
    if library == "before":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [before, env.get("PYTHONPATH")]))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def spread(values: list[float], scale: float = 1.0, fmt: str = ".1f") -> str:
    """'median [min - max]'."""
    return (f"{statistics.median(values) * scale:{fmt}} [{min(values) * scale:{fmt}} - "
            f"{max(values) * scale:{fmt}}]")


def compare(workload: str, threads: int, rounds: int, steps: int, before: str | None = None) -> None:
    results: dict[str, list[dict]] = {"handprop": [], **({"before": []} if before else {}), "torch": []}
    for _ in range(rounds):
        for library in results:  # A B A B ...: each round one fresh process per library
            results[library].append(run_child(library, workload, threads, steps, before))
            time.sleep(0.2)
    loss_pt = results["torch"][0]["loss"]
    void = [f"{lib} {r[0]['loss']} vs {loss_pt}" for lib, r in results.items()
            if abs(r[0]["loss"] - loss_pt) > 1e-3 * max(1.0, abs(loss_pt))]
    for clock in ("seconds", "cpu"):
        pt = [r[clock] for r in results["torch"]]
        cells = []
        for library in [lib for lib in results if lib != "torch"]:
            hp = [r[clock] for r in results[library]]
            ratios = [a / b for a, b in zip(hp, pt)]
            cells.append(f"{library} {spread(hp, 1e3)} ms ratio {spread(ratios, fmt='.2f')}x")
        print(f"{workload:<5}{threads:>3} thr {'wall' if clock == 'seconds' else 'CPU':>4}  PyTorch {spread(pt, 1e3)} ms"
              f"   {'   '.join(cells)}" + (f"   VOID: losses {'; '.join(void)}" if void else ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (one process per library each)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process (median taken)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--before", metavar="DIR", help="also time the handprop importable from DIR")
    parser.add_argument("--child", choices=("handprop", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.only[0], args.threads[0], args.steps)
        return
    print(f"batch {BATCH}, float32; per step: median [min - max] over {args.rounds} alternating rounds "
          f"(each the median of {args.steps} steps in a fresh process); ratio = handprop / PyTorch per round; "
          f"load average {os.getloadavg()[0]:.2f}")
    for workload in args.only:
        for threads in args.threads:
            compare(workload, threads, args.rounds, args.steps, args.before)


if __name__ == "__main__":
    main()
