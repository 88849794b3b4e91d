"""``handprop bench --distributed``, under ``mpirun``: the time of a data-parallel training step,
the time of its Allreduce calls and their share of the step (two MLPs and ``handprop train
--model cnn``'s network), and Allreduce times by message size.

    mpirun -n 2 handprop bench --distributed [--quick] [--repeats N] [--threads N] [--json PATH]

Every process runs the same measurements (collectives need them all); rank 0 prints. Rounds
alternate the workloads (A B A B) and the tables show medians with their range.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from ..bench.dataset import Data, load_data
from ..bench.models import handprop_cnn, handprop_mlp
from ..bench.report import median
from ..threads import get_num_threads, set_num_threads
from ..data import ArrayDataset
from ..nn import CrossEntropyLoss, Module
from ..optim import SGD
from ..serialize import atomic_write
from ..train.learner import Learner
from .callbacks import DataParallel
from .communicator import Communicator, connect
from .faults import StopSignals, abort_on_error
from .sharding import ShardedLoader

#: Message sizes of the Allreduce table: 4 KB .. 64 MB.
MESSAGE_BYTES = tuple(4096 * 4**k for k in range(8))


#: The training workloads: (label, the model, its input shape, global batch, timed steps, quick steps).
MODELS: tuple[tuple[str, Callable[[], Module], tuple[int, ...], int, int, int], ...] = (
    ("784-50-10 b64", lambda: handprop_mlp((784, 50, 10), seed=0), (784,), 64, 200, 40),
    ("784-1024-1024-10 b512", lambda: handprop_mlp((784, 1024, 1024, 10), seed=0), (784,), 512, 30, 8),
    ("cnn b64 (--model cnn)", handprop_cnn, (1, 28, 28), 64, 20, 5),
)


@dataclass
class Timing:
    """Medians and ranges of one measurement over the rounds, in seconds."""

    label: str
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, label: str, values: list[float]) -> Timing:
        return cls(label, median(values), min(values), max(values))


def time_allreduce(comm: Communicator, nbytes: int, calls: int) -> float:
    """Seconds per in-place float32 Allreduce of ``nbytes``, over ``calls`` back-to-back calls."""
    buffer = np.ones(nbytes // 4, dtype=np.float32)
    comm.allreduce(buffer)  # warm: MPI registers the buffer, pages are touched
    comm.barrier()
    start = time.perf_counter()
    for _ in range(calls):
        comm.allreduce(buffer)
    return (time.perf_counter() - start) / calls


def allreduce_table(comm: Communicator, rounds: int) -> list[Timing]:
    """One Timing per size of :data:`MESSAGE_BYTES`; each round walks through every size."""
    times: dict[int, list[float]] = {n: [] for n in MESSAGE_BYTES}
    for _ in range(rounds):
        for n in MESSAGE_BYTES:
            times[n].append(time_allreduce(comm, n, calls=max(2, min(200, (64 << 20) // n // 4))))
    return [Timing.of(f"{n // 1024:,} KB", v) for n, v in times.items()]


def step_table(comm: Communicator, data: Data, rounds: int, quick: bool) -> list[dict[str, Any]]:
    """Per model: the time of one training step on the global batch and of its Allreduce calls."""
    stop = StopSignals()  # not installed: a benchmark stops like any program
    jobs = []
    for label, make, shape, batch, steps, quick_steps in MODELS:
        n = (quick_steps if quick else steps) * batch
        model = make()
        x = data.x_train[:n].reshape(n, *shape)
        loader = ShardedLoader(ArrayDataset(x, data.y_train[:n]), batch, comm.rank, comm.size, shuffle=True, rng=0)
        parallel = DataParallel(comm, stop)
        learn = Learner(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.01), loader, None, [parallel])
        learn.fit(1)  # warm-up: buffers, BLAS pools, MPI connections
        jobs.append((label, learn, parallel, len(loader), {"step": [], "allreduce": []}))
    for _ in range(rounds):
        for label, learn, parallel, steps, times in jobs:
            parallel.allreduce_time = 0.0
            comm.barrier()
            start = time.perf_counter()
            learn.fit(learn.n_epochs + 1)
            times["step"].append((time.perf_counter() - start) / steps)
            times["allreduce"].append(parallel.allreduce_time / steps)
    rows = []
    for label, _, _, steps, times in jobs:
        step, allreduce = Timing.of("step", times["step"]), Timing.of("allreduce", times["allreduce"])
        rows.append({"model": label, "steps": steps, "step": asdict(step), "allreduce": asdict(allreduce),
                     "share": median([a / s for a, s in zip(times["allreduce"], times["step"])])})
    return rows


def format_report(comm: Communicator, threads: int, allreduce: list[Timing], steps: list[dict]) -> str:
    lines = [f"{comm.size} processes x {threads} BLAS thread(s); load average {os.getloadavg()[0]:.2f}", "",
             f"{'Allreduce (float32, in place)':<30}{'median':>11}{'range':>22}{'GB/s':>8}"]
    for t in allreduce:
        nbytes = int(t.label.split()[0].replace(",", "")) * 1024
        lines.append(f"{t.label:<30}{t.median * 1e3:>9.3f}ms{t.low * 1e3:>10.3f} - {t.high * 1e3:.3f}ms"
                     f"{nbytes / t.median / 1e9:>8.2f}")
    lines += ["", f"{'training step (global batch)':<30}{'step':>11}{'range':>22}{'Allreduce':>12}{'share':>8}"]
    for r in steps:
        s, a = r["step"], r["allreduce"]
        lines.append(f"{r['model']:<30}{s['median'] * 1e3:>9.3f}ms{s['low'] * 1e3:>10.3f} - {s['high'] * 1e3:.3f}ms"
                     f"{a['median'] * 1e3:>10.3f}ms{r['share']:>8.1%}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``handprop bench --distributed``: both tables on rank 0 (and ``--json``)."""
    comm = connect(True)
    assert comm is not None
    with abort_on_error(comm):
        threads = args.threads or comm.threads_per_process()
        set_num_threads(threads)
        rounds = args.repeats or (2 if args.quick else 5)
        data = load_data(args.data_dir, args.synthetic)
        allreduce = allreduce_table(comm, rounds)
        steps = step_table(comm, data, rounds, args.quick)
        if comm.is_root:
            print(format_report(comm, get_num_threads(), allreduce, steps), flush=True)
            if args.json:
                with atomic_write(args.json, "w") as f:
                    json.dump({"processes": comm.size, "threads": get_num_threads(), "data": data.source,
                               "allreduce": [asdict(t) for t in allreduce], "steps": steps}, f, indent=2)
    return 0
