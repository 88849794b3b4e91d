"""`handprop bench` runs and prints a table with ratios (timings themselves are never asserted)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from handprop.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_inference_prints_a_valid_comparison(torch, capsys):
    assert main(["bench", "--quick", "--synthetic", "--only", "infer", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("4 inference"))
    ratio = float(re.search(r"ms\s+([\d.]+)\s+<= 0.6x", row).group(1))  # handprop / PyTorch
    assert ratio > 0
    assert "outputs max rel diff" in row and "VOID" not in out


def test_bench_rejects_bad_flags(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--repeats", "0"])
    assert e.value.code == 2
    assert "argument --repeats: must be > 0" in capsys.readouterr().err


def test_benchmark_script_runs_from_a_checkout(torch):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_inference.py"), "--quick",
                           "--synthetic", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "4 inference" in proc.stdout
