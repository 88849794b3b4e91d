"""The data: the arrays both libraries train on (MNIST, else random), and workload 5, loading +
normalising MNIST (``benchmarks/bench_data.py`` in a child process)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .children import python
from .report import Row

_REPO = Path(__file__).resolve().parents[3]  # src/handprop/bench/ -> the repository


class Data:
    """The arrays both libraries train on, and where they came from."""

    def __init__(self, x_train: Any, y_train: Any, x_test: Any, y_test: Any, source: str):
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self.source = source


def load_data(data_dir: str | None = None, synthetic: bool = False) -> Data:
    """MNIST as the notebooks use it: 50,000 train / 10,000 test, float32 (N, 784) normalised
    with the training mean and std, labels int64. Random data of the same shape when MNIST is
    not found (or ``synthetic``)."""
    import numpy as np
    if not synthetic:
        try:
            from ..data import Normalize, load_dataset, to_float_flat
            folder = mnist_folder(data_dir)
            if folder is not None:
                (xtr, ytr), (xte, yte) = load_dataset("mnist", folder, download=False)
                x, xt = to_float_flat(xtr[:50000]), to_float_flat(xte)
                norm = Normalize().fit(x)
                norm(x, out=x)
                norm(xt, out=xt)
                return Data(x, ytr[:50000].astype(np.int64), xt, yte.astype(np.int64), f"MNIST ({folder})")
        except (ImportError, ValueError, OSError) as exc:
            print(f"bench: MNIST not loaded ({exc}); using random data", file=sys.stderr)
    rng = np.random.default_rng(0)
    return Data(rng.standard_normal((50000, 784), dtype=np.float32), rng.integers(0, 10, 50000),
                rng.standard_normal((10000, 784), dtype=np.float32), rng.integers(0, 10, 10000),
                "random (MNIST not found)")


def mnist_folder(data_dir: str | None) -> Path | None:
    """The MNIST folder: ``data_dir`` / the dataset search path / ``../shared/data`` of the repo."""
    from ..data import find_dataset
    folder = find_dataset("mnist", data_dir)
    if folder is None and data_dir is None:
        shared = _REPO.parent / "shared" / "data"
        folder = find_dataset("mnist", shared) if shared.is_dir() else None
    return folder


def bench_data_script(quick: bool, data_dir: str | None = None) -> Row | None:
    """Workload 5 is the data engineer's ``benchmarks/bench_data.py``: run it when present."""
    import subprocess
    script = _REPO / "benchmarks" / "bench_data.py"
    if not script.exists():
        return None
    folder = mnist_folder(data_dir)
    if folder is None:
        return Row("5 load + normalise MNIST", "s", None, check="skipped: MNIST not found")
    cmd = [python(), str(script), "--data-dir", str(folder)] + (["--runs", "3"] if quick else [])
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text = (res.stdout + res.stderr).strip()
    print("\n[5 data load: benchmarks/bench_data.py]\n" + text)
    import re
    medians = [float(m) for m in re.findall(r"median ([0-9.]+) s", text)]
    return Row("5 load + normalise MNIST (bench_data.py)", "s", medians[-1] if medians else None,
               check="whole dataset, verified; details above" if res.returncode == 0
               else f"bench_data.py failed ({res.returncode})")
