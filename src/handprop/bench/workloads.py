"""Workloads 1-4, each library timed at the same thread count: training steps (``train64``,
``train512``, ``compute`` with its GFLOP/s against sgemm) and inference (``infer``).

handprop and PyTorch run in this process; JAX, when installed, in a worker process
(:mod:`.worker`) that holds the same data and starts from the same weights. The thread count is
``--threads`` or, by default, what ``handprop train`` would choose for the workload's model on the
machine as it is now (:func:`handprop.threads.policy_threads`), given to every library.
Training rows are checked for agreement (:mod:`.agreement`); inference compares outputs.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from ..threads import thread_count
from .agreement import F32_RTOL, check_losses
from .dataset import Data
from .loops import train_handprop, train_torch
from .models import copy_model, handprop_mlp, torch_mlp
from .report import LIBRARIES, Row, median
from .timing import alternate, alternate_fast, settle

if TYPE_CHECKING:
    from .cli import Session
    from .worker import Worker

JAX_MODULE = "handprop.bench.jax_peer"


def forward_work(model, bs: int) -> int:
    """Multiply-adds of one forward pass, as the thread policy counts them: batch x parameters."""
    return bs * sum(p.data.size for p in model.parameters())


@contextmanager
def libraries(s: Session, work: int, **data: Any) -> Iterator[tuple[int, Worker | None, dict]]:
    """Give every library the workload's threads and start JAX's worker holding ``data``;
    yields (threads, the worker or None, {name: reference to the data in the worker})."""
    from ..threads import busy_cpus, get_num_threads, policy_threads, set_num_threads, usable_cpus
    threads = s.threads or policy_threads(work, busy_cpus(), usable_cpus())
    try:
        set_num_threads(threads)
    except ValueError:  # no run-time control (the session's header said so): the BLAS keeps its count
        threads = get_num_threads()
    if s.use_torch:
        import torch
        torch.set_num_threads(threads)
    if not s.use_jax:
        yield threads, None, {}
        return
    from .worker import Worker
    with Worker(JAX_MODULE, threads) as worker:
        yield threads, worker, {name: worker.put(name, value) for name, value in data.items()}


def timed(runs: dict[str, Callable[[], tuple[float, Any]]], outputs: dict[str, Any], repeats: int,
          fast: bool = False) -> dict[str, list[float]]:
    """Each library's run times, alternating A B A B (:mod:`.timing`); the last output of each
    run (losses, predictions) goes into ``outputs`` under its label."""
    def keeping(label: str, run: Callable[[], tuple[float, Any]]) -> Callable[[], float]:
        def once() -> float:
            seconds, outputs[label] = run()
            return seconds
        return once
    times = (alternate_fast if fast else alternate)([keeping(k, r) for k, r in runs.items()], repeats)
    return dict(zip(runs, times))


def _row(workload: str, name: str, times: dict[str, list[float]], per: int, threads: int, **extra: Any) -> Row:
    """A row of medians (per step when ``per`` > 1), with each library's range and the threads."""
    values = {LIBRARIES[k]: median(v) / per for k, v in times.items()}
    ranges = {k: (min(v) / per, max(v) / per) for k, v in times.items()}
    return Row(workload, name, "s", extra={"times": times, "range": ranges, "threads": threads, **extra}, **values)


# --------------------------------------------------------------------------------------------
# workloads 1-3: training
def bench_train(s: Session, workload: str, name: str, data: Data, sizes: tuple[int, ...], bs: int, steps: int,
                lr: float, check: bool = True, seed: int = 0) -> Row:
    """Time ``steps`` training steps in each library (from identical initial weights); with
    ``check``, judge the losses (:func:`.agreement.check_losses`)."""
    init = handprop_mlp(sizes, seed)
    x, y = data.x_train, data.y_train
    losses: dict[str, Any] = {}
    with libraries(s, forward_work(init, bs), x=x, y=y) as (threads, worker, ref):
        runs: dict[str, Callable[[], tuple[float, Any]]] = {
            "handprop": lambda: train_handprop(copy_model(init), x, y, bs, steps, lr)}
        if s.use_torch:
            runs["pytorch"] = lambda: train_torch(torch_mlp(init), x, y, bs, steps, lr)
        if worker is not None:
            from .jax_peer import mlp_params
            params = mlp_params(init)
            runs["jax"] = lambda: worker.call("train_step", params, ref["x"], ref["y"], bs, steps, lr)
            runs["jax scan"] = lambda: worker.call("train_scan", params, ref["x"], ref["y"], bs, steps, lr)
        row = _row(workload, name, timed(runs, losses, s.repeats), steps, threads, steps=steps, batch=bs, lr=lr)
        if check and len(runs) > 1:
            hp64, peers64 = float64_losses(init, x, y, bs, steps, lr, s.use_torch, worker, ref)
            check_losses(row, losses.pop("handprop"), hp64, losses, peers64)
    row.check = thread_count(threads) + (f"; {row.check}" if row.check else "")
    return row


def float64_losses(init, x: Any, y: Any, bs: int, steps: int, lr: float, use_torch: bool,
                   worker: Worker | None = None, ref: dict | None = None) -> tuple[Any, dict[str, Any]]:
    """Per-step losses of an untimed float64 run of handprop, and of each peer ({label: losses})."""
    import numpy as np
    x64 = x[:steps * bs].astype(np.float64)
    _, hp = train_handprop(copy_model(init).to(np.float64), x64, y, bs, steps, lr)
    peers = {}
    if use_torch:
        _, peers["pytorch"] = train_torch(torch_mlp(init).double(), x64, y, bs, steps, lr)
    if worker is not None:
        from .jax_peer import mlp_params
        _, peers["jax"] = worker.call("train_float64", mlp_params(init), ref["x"], ref["y"], bs, steps, lr)
    return hp, peers


def matmul_flops(sizes: tuple[int, ...], bs: int) -> float:
    """FLOPs of one training step's matrix products: forward, weight grads, and input grads of
    every layer but the first (nobody asks for dL/dx)."""
    pairs = [a * b for a, b in pairwise(sizes)]
    return 2.0 * bs * (2 * sum(pairs) + sum(pairs[1:]))


def sgemm_rate(n: int = 2048, repeats: int = 5, use_torch: bool = True) -> dict[str, float]:
    """GFLOP/s of a square float32 matrix product (NumPy's BLAS, and PyTorch's), best of ``repeats``."""
    import time

    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty_like(a)
    fns = {"numpy": lambda: np.matmul(a, b, out=c)}
    if use_torch:
        import torch
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.empty(n, n)
        fns["torch"] = lambda: torch.mm(ta, tb, out=tc)
    rates = {}
    for name, fn in fns.items():
        fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        rates[name] = 2.0 * n ** 3 / min(ts) / 1e9
        settle()
    return rates


def bench_compute(s: Session, data: Data, check: bool = True) -> list[Row]:
    """Workload 3: the compute-bound MLP's time per step, and its GFLOP/s against sgemm (at the
    workload's threads, which the thread policy leaves set)."""
    sizes, bs = (784, 1024, 1024, 10), 512
    steps = 4 if s.quick else 20
    row = bench_train(s, "compute", f"3 train 784-1024-1024-10 b512 ({steps} steps), per step", data, sizes, bs,
                      steps, 0.1, check)
    rates = sgemm_rate(1024 if s.quick else 2048, use_torch=s.use_torch)
    peak = max(rates.values())
    flops = matmul_flops(sizes, bs)
    gflops = {attr: flops / v / 1e9 for attr in LIBRARIES.values() if (v := getattr(row, attr))}
    row.extra.update({"sgemm_gflops": rates, "handprop_gflops": gflops["handprop"]})
    frac = gflops["handprop"] / peak
    return [row, Row("compute_gflops", "3 ... achieved GFLOP/s (sgemm: " + ", ".join(f"{k} {v:.0f}" for k, v
                                                                                   in rates.items()) + ")",
                     "GF/s", check=f"{frac:.0%} of sgemm {peak:.0f} GFLOP/s", extra={"sgemm_fraction": frac},
                     **gflops)]


# --------------------------------------------------------------------------------------------
# workload 4: inference
def bench_infer(s: Session, data: Data) -> Row:
    """Forward pass of workload 1's model over the 10,000 test images, in eval / no_grad mode."""
    import numpy as np
    model = handprop_mlp((784, 50, 10)).eval()
    x = data.x_test
    out: dict[str, Any] = {}
    with libraries(s, forward_work(model, len(x)), x_test=x) as (threads, worker, ref):
        runs: dict[str, Callable[[], tuple[float, Any]]] = {"handprop": lambda: _clock(lambda: model(x))}
        if s.use_torch:
            import torch
            tmodel, xt = torch_mlp(model), torch.from_numpy(x)

            def run_torch() -> tuple[float, Any]:
                with torch.no_grad():
                    return _clock(lambda: tmodel(xt))
            runs["pytorch"] = run_torch
        if worker is not None:
            from .jax_peer import mlp_params
            params = mlp_params(model)
            runs["jax"] = lambda: worker.call("infer", params, ref["x_test"])
        row = _row("infer", "4 inference 784-50-10, 10k images", timed(runs, out, s.repeats * (2 if s.quick else 4), fast=True), 1,
                   threads)
    hp = out.pop("handprop")
    checks = []
    for label, ref_out in out.items():
        ref_out = np.asarray(ref_out)
        diff = float(np.max(np.abs(hp - ref_out)) / max(1.0, float(np.max(np.abs(ref_out)))))
        ok = diff <= F32_RTOL and bool(np.all(hp.argmax(1) == ref_out.argmax(1)))
        checks.append((label, diff, ok))
    row.agree = all(ok for *_, ok in checks) if checks else None
    worst = max((d for _, d, _ in checks), default=None)
    row.check = thread_count(threads) + (
        "" if worst is None else f"; outputs max rel diff {worst:.1e}" + ("" if row.agree else " VOID"))
    return row


def _clock(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    import time
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result
