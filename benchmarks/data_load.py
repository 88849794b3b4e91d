"""Workload 5, data: loading + normalising MNIST, timed by ``bench_data.py`` in a fresh
interpreter (so the files are read cold by the process, as ``handprop train`` reads them)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from children import python

from handprop.bench.dataset import mnist_folder
from handprop.bench.report import Row

SCRIPT = Path(__file__).with_name("bench_data.py")


def bench_data_load(quick: bool, data_dir: str | None) -> Row:
    """The median of ``bench_data.py``'s whole-dataset job (its output is printed above the table)."""
    folder = mnist_folder(data_dir)
    if folder is None:
        return Row("data", "5 load + normalise MNIST", "s", None, check="skipped: MNIST not found")
    cmd = [python(), str(SCRIPT), "--data-dir", str(folder)] + (["--runs", "3"] if quick else [])
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text = (res.stdout + res.stderr).strip()
    print(f"\n[5 data load: {SCRIPT.name}]\n{text}")
    medians = [float(m) for m in re.findall(r"median ([0-9.]+) s", text)]
    return Row("data", "5 load + normalise MNIST (bench_data.py)", "s", medians[-1] if medians else None,
               check="whole dataset, verified; details above" if res.returncode == 0
               else f"bench_data.py failed ({res.returncode})")
