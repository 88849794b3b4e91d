"""Autograd overhead per training step: hand-written backward vs autograd vs PyTorch, one run.

The notebooks' 784-50-10 ReLU MLP, cross-entropy, plain SGD, float32, random MNIST-shaped
batches (the arithmetic does not depend on the pixel values). Each path runs the same number
of steps; the figure is the median over repeats of the mean time per step.

    python benchmarks/bench_autograd.py [--batch-size 64] [--steps 300] [--repeats 7] [--threads 1]

Single-threaded by default (NumPy's BLAS through threadpoolctl, PyTorch through
set_num_threads): small matrices gain nothing from threads and a shared machine makes
multi-threaded timings noise.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Callable

import numpy as np

from handprop import nn, optim
from handprop.autograd import Tensor, TensorModule, no_grad
from handprop.threads import get_num_threads, set_num_threads, thread_count

IN, OUT, LR = 784, 10, 0.1


def hand_written_step(batches, hidden: int) -> Callable[[int], None]:
    return _module_step(batches, nn.Sequential(nn.Linear(IN, hidden, rng=0), nn.ReLU(),
                                               nn.Linear(hidden, OUT, rng=1)))


def mixed_step(batches, hidden: int) -> Callable[[int], None]:
    """Sequential(Linear, TensorModule(relu), Linear): one autograd layer inside the Module path."""
    return _module_step(batches, nn.Sequential(nn.Linear(IN, hidden, rng=0), TensorModule(lambda t: t.relu()),
                                               nn.Linear(hidden, OUT, rng=1)))


def _module_step(batches, model: nn.Module) -> Callable[[int], None]:
    """One SGD step of ``model`` through the Module contract (forward, loss, backward, step)."""
    crit, opt = nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=LR)

    def step(i: int) -> None:
        x, y = batches[i % len(batches)]
        crit(model(x), y)
        opt.zero_grad()
        model.backward(crit.backward(), input_grad=False)
        opt.step()
    return step


def autograd_step(batches, hidden: int) -> Callable[[int], None]:
    init = [p.data for p in nn.Linear(IN, hidden, rng=0).parameters() + nn.Linear(hidden, OUT, rng=1).parameters()]
    w1, b1, w2, b2 = params = [Tensor(a, requires_grad=True) for a in init]

    def step(i: int) -> None:
        x, y = batches[i % len(batches)]
        logits = (Tensor(x) @ w1 + b1).relu() @ w2 + b2
        loss = -logits.log_softmax()[range(len(y)), y].mean()
        loss.backward()
        with no_grad():
            for p in params:
                p -= LR * p.grad
                p.zero_grad()
    return step


def torch_step(batches, hidden: int) -> Callable[[int], None]:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(IN, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, OUT))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    tb = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
    loss_fn = torch.nn.functional.cross_entropy

    def step(i: int) -> None:
        x, y = tb[i % len(tb)]
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def time_per_step(steps_by_name: dict[str, Callable[[int], None]], steps: int,
                  repeats: int) -> dict[str, float]:
    """Median over ``repeats`` of the mean seconds per step, per path (after a warm-up).

    The paths take turns within each repeat, so a busy machine slows them alike.
    """
    for step in steps_by_name.values():
        for i in range(min(20, steps)):
            step(i)
    runs: dict[str, list[float]] = {name: [] for name in steps_by_name}
    for _ in range(repeats):
        for name, step in steps_by_name.items():
            t0 = time.perf_counter()
            for i in range(steps):
                step(i)
            runs[name].append((time.perf_counter() - t0) / steps)
    return {name: statistics.median(r) for name, r in runs.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads for NumPy (via threadpoolctl) and PyTorch; 0 = library defaults")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((args.batch_size, IN), dtype=np.float32),
                rng.integers(0, OUT, args.batch_size)) for _ in range(16)]
    paths = {"hand-written": hand_written_step, "autograd": autograd_step,
             "mixed (TensorModule relu)": mixed_step}
    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        paths["pytorch"] = torch_step
        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch_info = "torch not installed"

    if args.threads:
        set_num_threads(args.threads)
    blas_info = f"BLAS {thread_count(get_num_threads())}"
    seconds = time_per_step({name: make(batches, args.hidden) for name, make in paths.items()},
                            args.steps, args.repeats)
    ms = {name: 1e3 * s for name, s in seconds.items()}
    result = {"batch_size": args.batch_size, "hidden": args.hidden, "steps": args.steps,
              "repeats": args.repeats, "ms_per_step": ms, "numpy": np.__version__, "blas": blas_info,
              "torch": torch_info,
              "python": platform.python_version()}
    if args.json:
        print(json.dumps(result, indent=2))
        return result
    hand = ms["hand-written"]
    print(f"784-{args.hidden}-10 MLP, batch {args.batch_size}, float32, SGD; median of {args.repeats} x "
          f"{args.steps} steps (numpy {np.__version__}, {blas_info}; {torch_info})")
    print(f"  {'path':<28}{'ms/step':>9}{'vs hand-written':>17}")
    for name, t in ms.items():
        print(f"  {name:<28}{t:>9.3f}{t / hand:>16.2f}x")
    auto = ms["autograd"]
    print(f"autograd overhead: {auto - hand:+.3f} ms/step ({100 * (auto / hand - 1):+.0f}%) vs hand-written", end="")
    if "pytorch" in ms:
        print(f", {auto / ms['pytorch']:.2f}x PyTorch's time", end="")
    print()
    return result


if __name__ == "__main__":
    main()
