"""Workload 6, start-up: ``import handprop`` (and no heavy module with it) and ``handprop
--help``, each timed in fresh interpreters; PyTorch's side is ``import torch``."""
from __future__ import annotations

from pathlib import Path

from children import child_seconds, python, wall_seconds

from handprop.bench.report import Row

_IMPORT_CODE = ("import sys, time\nt = time.perf_counter()\nimport {mod}\nd = time.perf_counter() - t\n"
                "{extra}print(d)")


def bench_startup(runs: int, use_torch: bool) -> list[Row]:
    """``import handprop`` (which must not load torch, tqdm or matplotlib) and ``handprop --help``."""
    import subprocess
    heavy = "bad = [m for m in ('torch', 'tqdm', 'matplotlib') if m in sys.modules]\n" \
            "print('heavy:' + ','.join(bad))\n"
    res = subprocess.run([python(), "-c", _IMPORT_CODE.format(mod="handprop", extra=heavy)],
                         capture_output=True, text=True, check=True)
    bad = next(line for line in res.stdout.splitlines() if line.startswith("heavy:"))[6:]
    imp = child_seconds(_IMPORT_CODE.format(mod="handprop", extra=""), runs)
    heavy_loaded = bad.split(",") if bad else []
    row_imp = Row("import", "6 import handprop", "s", imp, extra={"heavy": heavy_loaded},
                  check=f"imports {bad}" if bad else "no torch/tqdm/matplotlib")
    if use_torch:
        row_imp.torch = child_seconds(_IMPORT_CODE.format(mod="torch", extra=""), max(1, runs // 2))
        row_imp.check += " (pytorch: import torch)"
    script = Path(python()).with_name("handprop")
    cmd = [str(script), "--help"] if script.exists() else [python(), "-m", "handprop", "--help"]
    helped = wall_seconds(cmd, runs)
    baseline = wall_seconds([python(), "-c", "pass"], runs)
    row_help = Row("help", "6 handprop --help (wall)", "s", helped,
                   check=f"bare python -c pass: {baseline * 1e3:.0f} ms")
    return [row_imp, row_help]
