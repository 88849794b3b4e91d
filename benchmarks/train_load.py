"""Workload 8, ``train_load``: ``handprop train --epochs 1`` (the defaults: MLP 784-256-10, AdamW,
batch 64) quiet and with a competing busy process, against the equivalent PyTorch script
(minutes: in the acceptance suite, not in its default set).

Three contestants, each a fresh process timed whole (start-up, data, one epoch, the test set),
alternating A B C A B C: ``handprop train`` with its own thread policy, handprop with
``--threads <CPUs>`` (the BLAS default) (what the issue measured: 11.6 s against 3.9 s with one thread), and
PyTorch with its default threads. Then the same under load (:mod:`handprop.bench.load`).

    python benchmarks/train_load.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext

from children import python
from memory import write_torch_train

from handprop.bench.dataset import mnist_folder
from handprop.bench.load import competing_process
from handprop.bench.report import Row, format_load_table, format_table, median

_HANDPROP = """
import sys
from handprop.cli import main
threads = [] if sys.argv[1] == "policy" else ["--threads", sys.argv[1]]  # the policy: handprop train's own
sys.exit(main(["train", "--epochs", "1", "--quiet", "--offline", "--overwrite", "--out", sys.argv[2], *threads]))
"""
CONTESTANTS = ("handprop (policy)", "handprop (BLAS default)", "pytorch")


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed: {res.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - t0


def bench_train_load(data_dir: str | None, repeats: int) -> list[Row]:
    """Two rows, handprop with the thread policy and with the BLAS default threads, each next to
    PyTorch: median wall seconds quiet, and under load in ``loaded``."""
    from handprop.train.config import TrainConfig
    folder = mnist_folder(data_dir)
    if folder is None:
        return [Row("train_load", "8 handprop train --epochs 1", "s", None, check="skipped: MNIST not found")]
    env = {**os.environ, "HANDPROP_DATA": str(folder.parent) if folder.name == "mnist" else str(folder)}
    times: dict[tuple[str, bool], list[float]] = {(c, loaded): [] for c in CONTESTANTS for loaded in (False, True)}
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "torch_train.py")
        write_torch_train(script, TrainConfig.create(epochs=1).to_dict(), folder)
        commands = {"handprop (policy)": [python(), "-c", _HANDPROP, "policy", os.path.join(tmp, "a")],
                    "handprop (BLAS default)": [python(), "-c", _HANDPROP, str(os.cpu_count() or 1), os.path.join(tmp, "b")],
                    "pytorch": [python(), script, os.path.join(tmp, "t.pt")]}
        for loaded in (False, True):
            with competing_process() if loaded else nullcontext():
                for _ in range(repeats):
                    for name, cmd in commands.items():
                        times[(name, loaded)].append(_wall(cmd, env))
    quiet = {name: median(times[(name, False)]) for name in CONTESTANTS}
    under = {name: median(times[(name, True)]) for name in CONTESTANTS}
    return [Row(workload, f"8 handprop train --epochs 1, {how}", "s", quiet[name], quiet["pytorch"],
                loaded={"handprop": under[name], "pytorch": under["pytorch"]},
                check=f"under load {under[name]:.1f} s ({under[name] / quiet[name]:.2f}x), pytorch "
                      f"{under['pytorch']:.1f} s ({under['pytorch'] / quiet['pytorch']:.2f}x)",
                extra={"times": {"handprop": times[(name, False)], "pytorch": times[("pytorch", False)]},
                       "loaded_times": {"handprop": times[(name, True)], "pytorch": times[("pytorch", True)]}})
            for workload, name, how in (("train_load", "handprop (policy)", "thread policy"),
                                        ("train_load_blas_default", "handprop (BLAS default)", "BLAS default threads"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs", flush=True)
    rows = bench_train_load(args.data_dir, args.repeats)
    print(format_table(rows))
    print(format_load_table(rows))
    for row in rows:
        print(row.name, "quiet", row.extra.get("times"), "loaded", row.extra.get("loaded_times"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
