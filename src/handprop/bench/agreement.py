"""Did the libraries compute the same thing? The loss check of the training rows.

The timed runs are float32, and float32 loss trajectories cannot be compared over hundreds of
steps: a ReLU pre-activation within rounding (~1e-7) of zero comes out positive in one library and
not in another (their matrix products sum in different orders, more so with several BLAS
threads), that sample's gradient flows in one only, the weights differ by ~1e-4 from then on, and
every later step amplifies it (workload 1 on MNIST, 2 threads: 5e-7 for 236 steps, 1e-4 at step
237, 5e-2 by step 781). So a training row is judged on two runs. An untimed float64 run of each
library, from the same weights over the same batches, must agree with handprop's at *every*
step to :data:`F64_RTOL`: rounding there is ~1e-16 and kink flips are out of reach (1e-15 over
781 steps), while a real difference (another batch order, init, learning rate or loss reduction)
shows at >= 1e-6 within a step or two. The timed float32 runs must be finite and, over the first
:data:`F32_STEPS` steps (before a cascade builds up; one early flip costs ~1e-4), agree with
handprop's and with the float64 run to :data:`F32_RTOL`. A failed check marks the row VOID.
"""
from __future__ import annotations

from typing import Any

from .report import Row

#: Tolerances of the loss agreement check (relative to max(1, |loss|)); see the module docstring.
F32_STEPS, F32_RTOL, F64_RTOL = 10, 1e-3, 1e-9


def loss_diff(a: Any, b: Any) -> float:
    """max |a - b| / max(1, |b|) over the steps; inf when a loss is not finite."""
    import numpy as np
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def check_losses(row: Row, hp32: Any, hp64: Any, peers32: dict[str, Any], peers64: dict[str, Any]) -> None:
    """Judge a training row from per-step losses: handprop's timed float32 run ``hp32`` and its
    untimed float64 run ``hp64``; each peer's timed float32 runs (``peers32``, e.g. pytorch, jax,
    jax scan) and float64 runs (``peers64``). Sets ``row.agree``, ``row.check`` and the diffs in
    ``row.extra``; the text reports the worst peer."""
    k = F32_STEPS
    f64 = {name: loss_diff(hp64, ref) for name, ref in peers64.items()}
    f32_all = {name: loss_diff(hp32, ref) for name, ref in peers32.items()}
    f32_first = {name: loss_diff(hp32[:k], ref[:k]) for name, ref in peers32.items()}
    same_run = loss_diff(hp32[:k], hp64[:k]) <= F32_RTOL
    worst64, worst_all, worst_first = (max(d.values(), default=0.0) for d in (f64, f32_all, f32_first))
    row.agree = worst64 <= F64_RTOL and worst_first <= F32_RTOL and worst_all < float("inf") and same_run
    row.check = (f"losses: float64 {worst64:.0e}; float32 {worst_all:.0e} (first {min(k, len(hp32))} "
                 f"{worst_first:.0e})" + ("" if same_run else "; float64 run is another run")
                 + ("" if row.agree else " VOID"))
    row.extra.update(loss_diff_float64=f64, loss_diff_float32=f32_all, loss_diff_float32_first=f32_first)


def array_diff(a: Any, b: Any) -> float:
    """The worst of max |a_i - b_i| / max(1, max |b_i|) over paired arrays (an array or a tuple of
    them: outputs, gradients); inf when a shape differs or a value is not finite."""
    import numpy as np
    pairs = list(zip(a, b, strict=True)) if isinstance(a, tuple) else [(a, b)]
    worst = 0.0
    for x, ref in pairs:
        x, ref = np.asarray(x, dtype=np.float64), np.asarray(ref, dtype=np.float64)
        if x.shape != ref.shape or not (np.all(np.isfinite(x)) and np.all(np.isfinite(ref))):
            return float("inf")
        worst = max(worst, float(np.max(np.abs(x - ref))) / max(1.0, float(np.max(np.abs(ref)))))
    return worst
