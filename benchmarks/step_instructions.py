"""Instructions per training step, counted by valgrind's callgrind: a measure of Python and NumPy
overhead that the machine's load cannot move (times on a shared machine vary by 10%; counts do
not), for deciding a change to the hot paths.

    python benchmarks/step_instructions.py [--batch 64] [--sizes 784-50-10] [--steps 20,120] [--top 15]

Runs the bench's handprop loop (:func:`handprop.bench.loops.train_handprop`, one BLAS thread)
under callgrind twice, for two step counts on the same data, and prints the difference per step:
the total, by library (OpenBLAS, NumPy, the Python interpreter, the rest) and the top functions.
Start-up, imports and data are the same in both runs and cancel out. Under valgrind OpenBLAS
sees no AVX-512 and runs its Haswell kernels, so GEMM counts are not those of the real run.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

_RUN = """
import sys
import numpy as np
from handprop.bench.loops import train_handprop
from handprop.bench.models import copy_model, handprop_mlp
bs, steps, most = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sizes = tuple(int(s) for s in sys.argv[4].split("-"))
rng = np.random.default_rng(0)
x = rng.standard_normal((bs * most, sizes[0]), dtype=np.float32)
y = rng.integers(0, sizes[-1], bs * most)
model = handprop_mlp(sizes)
train_handprop(copy_model(model), x, y, bs, 3, 0.1)  # first-use paths
train_handprop(model, x, y, bs, steps, 0.1)
"""
_LINE = re.compile(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)")


def counts(bs: int, steps: int, most: int, sizes: str, folder: str) -> dict[str, int]:
    """{function: instructions} of one run under callgrind (self cost, every function)."""
    out = os.path.join(folder, f"callgrind.{steps}")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", _RUN,
                    str(bs), str(steps), str(most), sizes], env=env, check=True, capture_output=True)
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", out], check=True,
                          capture_output=True, text=True).stdout
    return {m.group(2).strip(): int(m.group(1).replace(",", "")) for line in text.splitlines()
            if (m := _LINE.match(line))}


def library(function: str) -> str:
    for needle, name in (("openblas", "OpenBLAS"), ("numpy", "NumPy"), ("libpython", "Python")):
        if needle in function:
            return name
    return "other"


def short(function: str) -> str:
    """``file:name [library]`` -> ``name``."""
    return re.sub(r"\s*\[.*$", "", function.split(":", 1)[-1])[:90]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--sizes", default="784-50-10")
    parser.add_argument("--steps", default="20,120", help="the two step counts")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        print("step_instructions.py: error: valgrind is not installed", file=sys.stderr)
        return 2
    low, high = (int(s) for s in args.steps.split(","))
    with tempfile.TemporaryDirectory() as folder:
        a, b = (counts(args.batch, n, high, args.sizes, folder) for n in (low, high))
    per_step = {f: (b.get(f, 0) - a.get(f, 0)) / (high - low) for f in b if f != "PROGRAM TOTALS"}
    by_library: dict[str, float] = {}
    for f, v in per_step.items():
        by_library[library(f)] = by_library.get(library(f), 0) + v
    print(f"MLP {args.sizes}, batch {args.batch}: {sum(per_step.values()):,.0f} instructions per step")
    print("  " + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(by_library.items(), key=lambda kv: -kv[1])))
    for f, v in sorted(per_step.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"  {v:12,.0f}  {short(f)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
