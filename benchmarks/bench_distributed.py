"""Data-parallel measurements: the figures of docs/distributed.md.

    mpirun -n 2 --oversubscribe python benchmarks/bench_distributed.py mpi [--quick] [--repeats N] [--json PATH]
        Allreduce times 4 KB .. 64 MB, and the step time and Allreduce share of 784-50-10 b64 and
        784-1024-1024-10 b512 and the CNN (what `mpirun -n 2 handprop bench --distributed` prints).
    mpirun -n 2 --oversubscribe python benchmarks/bench_distributed.py overlap [--repeats N]
        Whether starting the Allreduce of the last layers' gradients (Iallreduce) while the first
        layer's backward runs shortens the step of 784-1024-1024-10 b512.
    python benchmarks/bench_distributed.py throughput [--rounds N] [--steps N]
        784-1024-1024-10 at global batch 512: `mpirun -n 2 handprop train` with 1 BLAS thread each
        against `handprop train` with 2 threads, runs alternating, samples per second of epoch 2.
    python benchmarks/bench_distributed.py scaling [--repeats N]
        The cluster model: one thread's step time at each per-process batch B/N (measured here)
        plus a ring Allreduce of the gradients at 10 and 100 Gbit/s (modelled), for N = 2 .. 64.

As root, export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 first.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from handprop.bench.report import median

COMPUTE_MLP = ["--hidden", "1024", "--hidden", "1024", "--batch-size", "512", "--optimizer", "sgd", "--lr", "0.01",
               "--schedule", "none"]


def mpi(args: argparse.Namespace) -> int:
    from handprop.distributed.bench import run
    return run(argparse.Namespace(threads=args.threads, repeats=args.repeats, quick=args.quick,
                                  data_dir=None, synthetic=False, json=args.json))


#: The variants of the overlap experiment: how the gradients of layers 2-3 travel.
OVERLAP_VARIANTS = {
    "blocking": "Allreduce after backward",
    "nonblocking": "Iallreduce + Wait after backward",
    "overlapped": "Iallreduce during layer 1's backward",
}


def blocking_against_nonblocking(comm, rounds: int) -> dict[int, tuple[list[float], list[float]]]:
    """Seconds per call of Allreduce and of Iallreduce + Wait, alone, for 256 KB .. 64 MB."""
    MPI = comm.MPI
    out: dict[int, tuple[list[float], list[float]]] = {}
    for nbytes in (256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20):
        buffer, calls = np.ones(nbytes // 4, dtype=np.float32), max(2, (16 << 20) // nbytes)
        ways = (lambda: comm.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM),
                lambda: comm.comm.Iallreduce(MPI.IN_PLACE, buffer, op=MPI.SUM).Wait())
        out[nbytes] = ([], [])
        for _ in range(rounds):
            for way, times in zip(ways, out[nbytes]):
                way()
                comm.barrier()
                start = time.perf_counter()
                for _ in range(calls):
                    way()
                times.append((time.perf_counter() - start) / calls)
    return out


def overlap(args: argparse.Namespace) -> int:
    """784-1024-1024-10 b512 on 2 processes: the last two layers' gradients (4.2 MB) summed with a
    blocking Allreduce after backward, with Iallreduce + Wait at the same place, or with Iallreduce
    started as soon as their backward is done (overlapping the first layer's backward)."""
    from handprop.bench.models import handprop_mlp
    from handprop.threads import set_num_threads
    from handprop.distributed import GradientBuckets, abort_on_error, connect
    from handprop.nn import CrossEntropyLoss
    from handprop.optim import SGD

    comm = connect(True)
    MPI = comm.MPI
    with abort_on_error(comm):
        set_num_threads(1)
        model = handprop_mlp((784, 1024, 1024, 10))
        first, late = model[0].parameters(), [p for layer in model.layers[1:] for p in layer.parameters()]
        early_bucket, late_bucket = GradientBuckets(first, 1 << 30), GradientBuckets(late, 1 << 30)
        loss, opt = CrossEntropyLoss(), SGD(model.parameters(), lr=0.01)
        rng = np.random.default_rng(comm.rank)
        x, y = rng.standard_normal((256, 784), dtype=np.float32), rng.integers(0, 10, 256)

        def iallreduce():
            return comm.comm.Iallreduce(MPI.IN_PLACE, late_bucket.buffers[0], op=MPI.SUM)

        def step(variant: str) -> None:
            loss(model(x), y)
            g, request = loss.backward(), None
            for i in range(len(model) - 1, -1, -1):
                g = model[i].backward(g, i > 0)
                if variant == "overlapped" and i == 1:  # layers 1.. are done: their gradients can travel
                    request = iallreduce()
            if variant == "blocking":
                comm.allreduce(late_bucket.buffers[0])
            else:
                (request or iallreduce()).Wait()
            comm.allreduce(early_bucket.buffers[0])
            opt.step()
            opt.zero_grad()

        times: dict[str, list[float]] = {variant: [] for variant in OVERLAP_VARIANTS}
        for variant in OVERLAP_VARIANTS:
            step(variant)
        for _ in range(args.repeats or 5):
            for variant in OVERLAP_VARIANTS:
                comm.barrier()
                start = time.perf_counter()
                for _ in range(args.steps):
                    step(variant)
                times[variant].append((time.perf_counter() - start) / args.steps)
        calls = blocking_against_nonblocking(comm, args.repeats or 5)
        if comm.is_root:
            print(f"load average {os.getloadavg()[0]:.2f}; {args.repeats or 5} rounds, alternating")
            for nbytes, (blocking, nonblocking) in calls.items():
                print(f"{nbytes >> 10:>8,} KB  Allreduce {median(blocking) * 1e3:8.3f} ms (fastest {min(blocking) * 1e3:.3f})"
                      f"   Iallreduce + Wait {median(nonblocking) * 1e3:8.3f} ms (fastest {min(nonblocking) * 1e3:.3f})")
            print(f"784-1024-1024-10 b512 on {comm.size} processes x 1 thread; load average {os.getloadavg()[0]:.2f}")
            for variant, label in OVERLAP_VARIANTS.items():
                t = times[variant]
                print(f"{label:<40} {median(t) * 1e3:8.2f} ms/step  (range {min(t) * 1e3:.2f} - {max(t) * 1e3:.2f}, "
                      f"{len(t)} rounds of {args.steps} steps)")
    return 0


def _train(command: list[str], flags: list[str], steps: int, env: dict[str, str]) -> float:
    """Samples per second in the second epoch of one ``handprop train`` run (the epoch's time,
    which includes its validation pass over 1,000 images)."""
    with tempfile.TemporaryDirectory() as tmp:
        flags = [*flags, *COMPUTE_MLP, "--subset", str(512 * steps), "--valid", "1000", "--epochs", "2", "--quiet",
                 "--out", f"{tmp}/run"]
        subprocess.run([*command, "-m", "handprop", "train", *flags], env=env, capture_output=True, text=True,
                       check=True)
        history = json.loads(Path(tmp, "run", "metrics.json").read_text())["history"]
    return 512 * steps / history[-1]["time"]


def throughput(args: argparse.Namespace) -> int:
    mpirun = str(Path(sys.executable).with_name("mpirun")) if Path(sys.executable).with_name("mpirun").is_file() \
        else shutil.which("mpirun")
    if mpirun is None:
        raise SystemExit("mpirun not found: pip install 'handprop[mpi]'")
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    variants = {  # name: (launch, flags)
        "2 processes x 1 thread": ([mpirun, "-n", "2", "--oversubscribe", sys.executable], ["--threads", "1"]),
        "1 process x 2 threads": ([sys.executable], ["--no-distributed", "--threads", "2"]),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        for name, (command, flags) in variants.items():
            rates[name].append(_train(command, flags, args.steps, env))
        print(f"round {round_ + 1}: " + ", ".join(f"{n} {r[-1]:,.0f}/s" for n, r in rates.items()), flush=True)
    print(f"\n784-1024-1024-10, global batch 512, {args.steps} steps per epoch, samples/s of epoch 2 "
          f"(load average {os.getloadavg()[0]:.2f}):")
    for name, r in rates.items():
        print(f"  {name:<24} median {median(r):8,.0f}  range {min(r):,.0f} - {max(r):,.0f}")
    ratios = [a / b for a, b in zip(*rates.values())]
    print(f"  ratio (2 x 1 / 1 x 2): median {median(ratios):.3f}, range {min(ratios):.3f} - {max(ratios):.3f}")
    return 0


#: The networks of the scaling model: (label, layer sizes, global batch).
SCALING_MODELS = (("784-50-10 b64", (784, 50, 10), 64), ("784-1024-1024-10 b512", (784, 1024, 1024, 10), 512))
RANKS = (1, 2, 4, 8, 16, 32, 64)
#: Links of the model: (label, bytes per second, latency per message in seconds). The latencies are
#: typical of MPI over TCP on 10 Gbit/s Ethernet and over RDMA on 100 Gbit/s InfiniBand.
LINKS = (("10 Gbit/s", 10e9 / 8, 30e-6), ("100 Gbit/s", 100e9 / 8, 3e-6))


def step_runner(sizes: tuple[int, ...], batch: int, steps: int):
    """A function timing one thread's training steps (forward, backward, SGD) at ``batch``: seconds per step."""
    from handprop.bench.models import handprop_mlp
    from handprop.nn import CrossEntropyLoss
    from handprop.optim import SGD

    model, loss = handprop_mlp(sizes), CrossEntropyLoss()
    opt = SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, sizes[0]), dtype=np.float32), rng.integers(0, sizes[-1], batch)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss(model(x), y)
            model.backward(loss.backward(), input_grad=False)
            opt.step()
            opt.zero_grad()
        return (time.perf_counter() - start) / steps

    return run


def ring_allreduce_seconds(nbytes: int, ranks: int, bandwidth: float, latency: float) -> float:
    """Ring Allreduce (reduce-scatter then all-gather): 2(N-1) messages of nbytes/N per process,
    plus the 24-byte loss Allreduce (log2 N rounds of latency)."""
    if ranks == 1:
        return 0.0
    return 2 * (ranks - 1) * (latency + nbytes / ranks / bandwidth) + np.log2(ranks) * latency


def scaling(args: argparse.Namespace) -> int:
    from handprop.bench.models import handprop_mlp
    from handprop.threads import set_num_threads

    set_num_threads(1)
    repeats = args.repeats or 5
    print(f"one BLAS thread per process; load average {os.getloadavg()[0]:.2f}; medians of {repeats} runs")
    for label, sizes, batch in SCALING_MODELS:
        nbytes = sum(p.data.nbytes for p in handprop_mlp(sizes).parameters())
        runners = {n: step_runner(sizes, batch // n, max(20, 4000 // (batch // n))) for n in RANKS if batch // n >= 1}
        times: dict[int, list[float]] = {n: [] for n in runners}
        for run in runners.values():
            run()  # warm-up
        for _ in range(repeats):  # the batch sizes alternate within each round
            for n, run in runners.items():
                times[n].append(run())
        compute = {n: median(t) for n, t in times.items()}
        print(f"\n{label}: {nbytes:,} bytes of gradients per step; one process, one thread: "
              f"{compute[1] * 1e3:.2f} ms/step")
        print("efficiency: strong = global batch fixed (each process takes batch/N); weak = each process "
              f"keeps batch {batch} (global batch N x {batch})")
        print(f"{'N':>4}{'batch/N':>9}{'compute':>10}{'sent/rank':>11}" +
              "".join(f"{'Allreduce ' + name:>22}{'strong':>8}{'weak':>6}" for name, _, _ in LINKS))
        for n, t in compute.items():
            sent = 2 * (n - 1) / n * nbytes
            row = f"{n:>4}{batch // n:>9}{t * 1e3:>8.2f}ms{sent / 1e6:>9.2f}MB"
            for _, bandwidth, latency in LINKS:
                comm = ring_allreduce_seconds(nbytes, n, bandwidth, latency)
                row += f"{comm * 1e3:>20.2f}ms{compute[1] / (n * (t + comm)):>8.0%}{compute[1] / (compute[1] + comm):>6.0%}"
            print(row)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["mpi", "overlap", "throughput", "scaling"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, help="rounds (default 5; quick 2)")
    p.add_argument("--threads", type=int)
    p.add_argument("--json")
    p.add_argument("--rounds", type=int, default=5, help="throughput: rounds of A B")
    p.add_argument("--steps", type=int, default=20, help="overlap / throughput: steps per timed run")
    args = p.parse_args()
    return {"mpi": mpi, "overlap": overlap, "throughput": throughput, "scaling": scaling}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
