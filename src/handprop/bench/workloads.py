"""Workloads 1-4, timed in-process: training steps (``train64``, ``train512``, ``compute`` with
its GFLOP/s against sgemm) and inference (``infer``), each next to its PyTorch twin.

Do the two libraries compute the same thing? The timed runs are float32, and float32 loss
trajectories cannot be compared over hundreds of steps: a ReLU pre-activation within rounding
(~1e-7) of zero comes out positive in one library and not in the other (their matrix products
sum in different orders, more so with several BLAS threads), that sample's gradient flows in one
only, the weights differ by ~1e-4 from then on, and every later step amplifies it (workload 1
on MNIST, 2 threads: 5e-7 for 236 steps, 1e-4 at step 237, 5e-2 by step 781). So a training row is
judged on two runs. An untimed float64 run of each library, from the same weights over the same
batches, must agree at *every* step to :data:`F64_RTOL`: rounding there is ~1e-16 and kink
flips are out of reach (1e-15 over 781 steps), while a real difference (another batch order,
init, learning rate or loss reduction) shows at >= 1e-6 within a step or two. The timed float32
runs must be finite and, over the first :data:`F32_STEPS` steps (before a cascade builds up; one
early flip costs ~1e-4), agree with each other and with the float64 run to :data:`F32_RTOL`.
A failed check marks the row VOID; inference compares outputs.
"""
from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

from .dataset import Data
from .models import copy_model, handprop_mlp, torch_mlp
from .report import Row, median
from .timing import alternate, alternate_fast, settle

#: Tolerances of the loss agreement check (relative to max(1, |loss|)); see the module docstring.
F32_STEPS, F32_RTOL, F64_RTOL = 10, 1e-3, 1e-9


# --------------------------------------------------------------------------------------------
# training loops (what is timed)
def train_handprop(model, x, y, bs: int, steps: int, lr: float):
    """``steps`` SGD steps over consecutive batches; returns (seconds, per-step losses)."""
    import numpy as np

    from .. import nn, optim
    crit = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=lr)
    losses = np.empty(steps)
    t0 = time.perf_counter()
    for i in range(steps):
        xb, yb = x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]
        out = model(xb)
        losses[i] = crit(out, yb)
        g = crit.backward()
        model.backward(g, input_grad=False)
        opt.step()
        opt.zero_grad()
    return time.perf_counter() - t0, losses


def train_torch(model, x, y, bs: int, steps: int, lr: float):
    """The idiomatic PyTorch loop over the same batches; returns (seconds, per-step losses)."""
    import numpy as np
    import torch
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = np.empty(steps)
    cross_entropy = torch.nn.functional.cross_entropy
    t0 = time.perf_counter()
    for i in range(steps):
        xb, yb = xt[i * bs:(i + 1) * bs], yt[i * bs:(i + 1) * bs]
        loss = cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[i] = loss.item()
    return time.perf_counter() - t0, losses


def loss_diff(a, b) -> float:
    """max |a - b| / max(1, |b|) over the steps; inf when a loss is not finite."""
    import numpy as np
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def float64_losses(init, x, y, bs: int, steps: int, lr: float):
    """Per-step losses of an untimed float64 run of each library (the same batches, weights)."""
    import numpy as np
    x64 = x[:steps * bs].astype(np.float64)
    _, hp = train_handprop(copy_model(init).to(np.float64), x64, y, bs, steps, lr)
    _, ref = train_torch(torch_mlp(init).double(), x64, y, bs, steps, lr)
    return hp, ref


def check_losses(row: Row, hp32, ref32, hp64, ref64) -> None:
    """Judge a training row from its per-step losses: the float64 runs (:func:`float64_losses`)
    within :data:`F64_RTOL` at every step; the timed float32 runs finite, and within
    :data:`F32_RTOL` of each other and of the float64 run (it is the same run) over the first
    :data:`F32_STEPS` steps. Sets ``row.agree`` and ``row.check``."""
    k = F32_STEPS
    f64, f32_all, f32_first = loss_diff(hp64, ref64), loss_diff(hp32, ref32), loss_diff(hp32[:k], ref32[:k])
    same_run = loss_diff(hp32[:k], hp64[:k]) <= F32_RTOL
    row.agree = f64 <= F64_RTOL and f32_first <= F32_RTOL and f32_all < float("inf") and same_run
    row.check = (f"losses: float64 {f64:.0e}; float32 {f32_all:.0e} (first {min(k, len(hp32))} {f32_first:.0e})"
                 + ("" if same_run else "; float64 run is another run") + ("" if row.agree else " VOID"))
    row.extra.update(loss_diff_float64=f64, loss_diff_float32=f32_all, loss_diff_float32_first=f32_first)


# --------------------------------------------------------------------------------------------
# workloads 1-3: training
def bench_train(workload: str, name: str, data: Data, sizes: tuple[int, ...], bs: int, steps: int, lr: float,
                repeats: int, use_torch: bool, seed: int = 0) -> Row:
    """Time ``steps`` training steps in each library (from identical initial weights)."""
    init = handprop_mlp(sizes, seed)
    x, y = data.x_train, data.y_train
    result: dict[str, Any] = {}

    def run_hp() -> float:
        seconds, result["hp_losses"] = train_handprop(copy_model(init), x, y, bs, steps, lr)
        return seconds

    fns = [run_hp]
    if use_torch:
        def run_t() -> float:
            seconds, result["t_losses"] = train_torch(torch_mlp(init), x, y, bs, steps, lr)
            return seconds
        fns.append(run_t)
    times = alternate(fns, repeats)
    hp_step = median(times[0]) / steps
    row = Row(workload, name, "s", hp_step, extra={"steps": steps, "times": times, "batch": bs, "lr": lr})
    if use_torch:
        row.torch = median(times[1]) / steps
        check_losses(row, result["hp_losses"], result["t_losses"], *float64_losses(init, x, y, bs, steps, lr))
    row.extra["final_loss"] = float(result["hp_losses"][-1])
    return row


def matmul_flops(sizes: tuple[int, ...], bs: int) -> float:
    """FLOPs of one training step's matrix products: forward, weight grads, and input grads of
    every layer but the first (``input_grad=False``)."""
    pairs = [a * b for a, b in pairwise(sizes)]
    return 2.0 * bs * (2 * sum(pairs) + sum(pairs[1:]))


def sgemm_rate(n: int = 2048, repeats: int = 5, use_torch: bool = True) -> dict[str, float]:
    """GFLOP/s of a square float32 matrix product (NumPy's BLAS, and PyTorch's)."""
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


def bench_compute(data: Data, quick: bool, repeats: int, use_torch: bool) -> list[Row]:
    """Workload 3: the compute-bound MLP's time per step, and its GFLOP/s against sgemm."""
    sizes, bs = (784, 1024, 1024, 10), 512
    steps = 4 if quick else 20
    row = bench_train("compute", f"3 train 784-1024-1024-10 b512 ({steps} steps), per step", data, sizes, bs,
                      steps, 0.1, repeats, use_torch)
    rates = sgemm_rate(1024 if quick else 2048, use_torch=use_torch)
    peak = max(rates.values())
    flops = matmul_flops(sizes, bs)
    hp_rate = flops / row.handprop / 1e9
    row.extra.update({"sgemm_gflops": rates, "handprop_gflops": hp_rate})
    t_rate = flops / row.torch / 1e9 if row.torch else None
    frac = hp_rate / peak
    return [row, Row("compute_gflops", "3 ... achieved GFLOP/s (sgemm: "
                     + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()) + ")", "GF/s", hp_rate, t_rate,
                     check=f"{frac:.0%} of sgemm {peak:.0f} GFLOP/s", extra={"sgemm_fraction": frac})]


# --------------------------------------------------------------------------------------------
# workload 4: inference
def bench_infer(data: Data, repeats: int, use_torch: bool) -> Row:
    """Forward pass of workload 1's model over the 10,000 test images, in eval / no_grad mode."""
    import numpy as np
    model = handprop_mlp((784, 50, 10)).eval()
    x = data.x_test
    out: dict[str, Any] = {}

    def run_hp() -> float:
        t0 = time.perf_counter()
        out["hp"] = model(x)
        return time.perf_counter() - t0

    fns = [run_hp]
    if use_torch:
        import torch
        tmodel, xt = torch_mlp(model), torch.from_numpy(x)

        def run_t() -> float:
            t0 = time.perf_counter()
            with torch.no_grad():
                out["t"] = tmodel(xt)
            return time.perf_counter() - t0
        fns.append(run_t)
    times = alternate_fast(fns, repeats)
    row = Row("infer", "4 inference 784-50-10, 10k images", "s", median(times[0]), extra={"times": times})
    if use_torch:
        row.torch = median(times[1])
        ref = out["t"].numpy()
        diff = float(np.max(np.abs(out["hp"] - ref)) / max(1.0, float(np.max(np.abs(ref)))))
        same = float(np.mean(out["hp"].argmax(1) == ref.argmax(1)))
        ok = diff <= F32_RTOL and same == 1.0
        row.check = f"outputs max rel diff {diff:.1e}" + ("" if ok else " VOID")
        row.agree = ok
    return row
