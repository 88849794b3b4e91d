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
from .agreement import F32_RTOL, F64_RTOL, array_diff, check_losses
from .dataset import Data
from .loops import train_handprop, train_torch
from .models import copy_model, handprop_mlp, torch_twin
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
def bench_train(s: Session, workload: str, name: str, data: Data, init, bs: int, steps: int, lr: float,
                check: bool = True, x: Any = None, scan: bool = True) -> Row:
    """Time ``steps`` SGD steps of the model ``init`` (each run from a copy of its weights) in each
    library on ``x`` (default: the training images, flat); with ``check``, judge the losses
    (:func:`.agreement.check_losses`). ``scan=False`` leaves out JAX's ``lax.scan`` epoch."""
    x, y = data.x_train if x is None else x, data.y_train
    x, y = x[:steps * bs], y[:steps * bs]  # what the steps read (JAX's worker is sent no more)
    losses: dict[str, Any] = {}
    with libraries(s, forward_work(init, bs), x=x, y=y) as (threads, worker, ref):
        runs: dict[str, Callable[[], tuple[float, Any]]] = {
            "handprop": lambda: train_handprop(copy_model(init), x, y, bs, steps, lr)}
        if s.use_torch:
            runs["pytorch"] = lambda: train_torch(torch_twin(init), x, y, bs, steps, lr)
        if worker is not None:
            from .jax_peer import net_params
            net = net_params(init)
            runs["jax"] = lambda: worker.call("train_step", net, ref["x"], ref["y"], bs, steps, lr)
            if scan:
                runs["jax scan"] = lambda: worker.call("train_scan", net, ref["x"], ref["y"], bs, steps, lr)
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
        _, peers["pytorch"] = train_torch(torch_twin(init).double(), x64, y, bs, steps, lr)
    if worker is not None:
        from .jax_peer import net_params
        _, peers["jax"] = worker.call("train_float64", net_params(init), ref["x"], ref["y"], bs, steps, lr)
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
    row = bench_train(s, "compute", f"3 train 784-1024-1024-10 b512 ({steps} steps), per step", data,
                      handprop_mlp(sizes), bs, steps, 0.1, check)
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
    return infer_row(s, "infer", "4 inference 784-50-10, 10k images", handprop_mlp((784, 50, 10)).eval(),
                     data.x_test, fast=True)


def infer_row(s: Session, workload: str, name: str, model, x: Any, bs: int | None = None, fast: bool = False) -> Row:
    """Each library's eval-mode forward of ``model`` over ``x`` in batches of ``bs`` (default: one
    batch), timed (``fast``: a pass of milliseconds, run 3 times a turn and 2-4x as many turns;
    see :func:`.timing.alternate_fast`); the outputs must agree to :data:`.agreement.F32_RTOL`
    with the same argmax."""
    import numpy as np
    parts = [x[i:i + (bs or len(x))] for i in range(0, len(x), bs or len(x))]
    out: dict[str, Any] = {}
    with libraries(s, forward_work(model, len(parts[0])), x_test=x) as (threads, worker, ref):
        runs: dict[str, Callable[[], tuple[float, Any]]] = {
            "handprop": lambda: _clock(lambda: np.concatenate([model(p) for p in parts]))}
        if s.use_torch:
            import torch
            tmodel, tparts = torch_twin(model), [torch.from_numpy(p) for p in parts]

            def run_torch() -> tuple[float, Any]:
                with torch.no_grad():
                    return _clock(lambda: torch.cat([tmodel(p) for p in tparts]))
            runs["pytorch"] = run_torch
        if worker is not None:
            from .jax_peer import net_params
            net = net_params(model)
            runs["jax"] = lambda: worker.call("infer", net, ref["x_test"], bs)
        turns = s.repeats * (2 if s.quick else 4) if fast else s.repeats
        row = _row(workload, name, timed(runs, out, turns, fast), 1, threads, batch=len(parts[0]))
    hp = out.pop("handprop")
    checks = []
    for label, ref_out in out.items():
        ref_out = np.asarray(ref_out)
        diff = array_diff(hp, ref_out)
        ok = diff <= F32_RTOL and bool(np.all(hp.argmax(1) == ref_out.argmax(1)))
        checks.append((label, diff, ok))
    row.agree = all(ok for *_, ok in checks) if checks else None
    worst = max((d for _, d, _ in checks), default=None)
    row.check = thread_count(threads) + (
        "" if worst is None else f"; outputs max rel diff {worst:.1e}" + ("" if row.agree else " VOID"))
    return row


# --------------------------------------------------------------------------------------------
# workloads 9-11: the CNN of ``handprop train --model cnn``, and one convolution
#: Images per inference batch of ``cnninfer`` (a single 10k batch would hold ~1 GB of activations).
CNN_INFER_BATCH = 1000


def images(x: Any) -> Any:
    """Flat (N, 784) MNIST rows as the (N, 1, 28, 28) images a conv net takes (a view)."""
    return x.reshape(-1, 1, 28, 28)


def bench_cnn(s: Session, data: Data, check: bool = True) -> Row:
    """Workload 9: SGD steps of the ``--model cnn`` network (BatchNorm in training mode) at batch 64.
    JAX runs its jit step only: its ``lax.scan`` epoch of this network measured 4.6x slower than
    the jit step (1.07 s against 0.23 s a step: XLA's CPU convolutions inside a loop), and alone
    took most of the bench's time."""
    from .models import handprop_cnn
    bs, steps = 64, 8 if s.quick else 100
    return bench_train(s, "cnn64", f"9 cnn train b{bs} ({steps} steps), per step", data, handprop_cnn(), bs, steps,
                       0.05, check, images(data.x_train), scan=False)


def bench_cnn_infer(s: Session, data: Data) -> Row:
    """Workload 10: the ``--model cnn`` network in eval mode over the 10,000 test images (2,000
    with ``--quick``), its BatchNorm running statistics first moved off 0 and 1 by a few
    training-mode batches."""
    from .models import handprop_cnn
    model = handprop_cnn()
    x = images(data.x_train)
    for i in range(3):
        model(x[i * 256:(i + 1) * 256])
    n = 2000 if s.quick else len(data.x_test)
    return infer_row(s, "cnninfer", f"10 cnn inference, {n // 1000}k images (batches of {CNN_INFER_BATCH})",
                     model.eval(), images(data.x_test[:n]), CNN_INFER_BATCH)


#: Workload 11's convolution: (C_in, C_out, stride, padding), 3x3, no bias, on a batch of 64 28x28 maps.
CONV = (32, 64, 1, 1)


def bench_conv(s: Session, check: bool = True) -> Row:
    """Workload 11: one Conv2d's forward + backward (with dL/dx, as inside a network), per pass;
    with ``check``, its output and gradients must agree with each peer's in float64 to
    :data:`.agreement.F64_RTOL` (and in float32 to :data:`.agreement.F32_RTOL`)."""
    import numpy as np

    from .. import nn
    c_in, c_out, stride, padding = CONV
    layer = nn.Conv2d(c_in, c_out, 3, stride, padding, bias=False, rng=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, c_in, 28, 28), dtype=np.float32)
    g = rng.standard_normal(layer(x).shape, dtype=np.float32)
    reps = 1 if s.quick else 5
    w = layer.weight.data
    results: dict[str, Any] = {}
    with libraries(s, forward_work(layer, len(x)), x=x, g=g) as (threads, worker, ref):
        runs: dict[str, Callable[[], tuple[float, Any]]] = {"handprop": lambda: _conv_handprop(layer, x, g, reps)}
        if s.use_torch:
            runs["pytorch"] = lambda: _conv_torch(layer, x, g, reps)
        if worker is not None:
            runs["jax"] = lambda: worker.call("conv_grads", w, ref["x"], ref["g"], layer.stride, layer.padding, reps)
        row = _row("conv", f"11 conv {c_in}->{c_out} 3x3 s{stride} b64 28x28, fwd+bwd", timed(runs, results, s.repeats),
                   reps, threads)
        if check and len(runs) > 1:
            hp = results.pop("handprop")
            f32 = {k: array_diff(hp, v) for k, v in results.items()}
            x64, g64 = x.astype(np.float64), g.astype(np.float64)
            layer64 = copy_model(layer).to(np.float64)
            hp64 = _conv_handprop(layer64, x64, g64, 1)[1]
            peers64 = {}
            if s.use_torch:
                peers64["pytorch"] = _conv_torch(layer64, x64, g64, 1)[1]
            if worker is not None:
                peers64["jax"] = worker.call("conv_grads", w.astype(np.float64), x64, g64, layer.stride,
                                             layer.padding)[1]
            f64 = {k: array_diff(hp64, v) for k, v in peers64.items()}
            worst32, worst64 = max(f32.values()), max(f64.values())
            row.agree = worst32 <= F32_RTOL and worst64 <= F64_RTOL
            row.check = (f"output, dW, dx: float64 {worst64:.0e}; float32 {worst32:.0e}"
                         + ("" if row.agree else " VOID"))
            row.extra.update(diff_float64=f64, diff_float32=f32)
    row.check = thread_count(threads) + (f"; {row.check}" if row.check else "")
    return row


def _conv_handprop(layer, x: Any, g: Any, reps: int) -> tuple[float, tuple]:
    """``reps`` forward + backward passes; (seconds, (output, dL/dweight, dL/dx) of the last)."""
    import time
    t0 = time.perf_counter()
    for _ in range(reps):
        layer.zero_grad()
        out = layer(x)
        grad_x = layer.backward(g)
    return time.perf_counter() - t0, (out, layer.weight.grad.copy(), grad_x)


def _conv_torch(layer, x: Any, g: Any, reps: int) -> tuple[float, tuple]:
    """The same in PyTorch: the input a leaf that requires its gradient."""
    import time

    import torch
    conv = torch_twin(layer)
    xt = torch.from_numpy(x).requires_grad_()
    gt = torch.from_numpy(g)
    t0 = time.perf_counter()
    for _ in range(reps):
        conv.zero_grad()
        xt.grad = None
        out = conv(xt)
        out.backward(gt)
    seconds = time.perf_counter() - t0
    return seconds, (out.detach().numpy(), conv.weight.grad.numpy(), xt.grad.numpy())


def _clock(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    import time
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result
