"""``handprop bench --distributed``: its tables, its flags, and a quick run under ``mpirun -n 2``."""
from __future__ import annotations

import json

from handprop.distributed.bench import MESSAGE_BYTES, MODELS, Timing, format_report


class Comm:
    size = 2


def test_message_sizes_span_4_kb_to_64_mb():
    assert MESSAGE_BYTES[0] == 4 * 1024 and MESSAGE_BYTES[-1] == 64 * 2**20


def test_timing_keeps_median_and_range():
    t = Timing.of("x", [3.0, 1.0, 2.0, 10.0])
    assert (t.median, t.low, t.high) == (2.5, 1.0, 10.0)


def test_the_report_shows_bandwidth_and_the_share_of_the_step():
    allreduce = [Timing("4 KB", 4e-6, 3e-6, 5e-6), Timing("65,536 KB", 0.05, 0.04, 0.06)]
    steps = [{"model": "784-50-10 b64", "steps": 10, "step": {"median": 2e-3, "low": 1e-3, "high": 3e-3},
              "allreduce": {"median": 5e-4, "low": 4e-4, "high": 6e-4}, "share": 0.25}]
    lines = format_report(Comm(), 1, allreduce, steps).splitlines()
    assert lines[0].startswith("2 processes x 1 BLAS thread(s)")
    assert lines[3].split() == ["4", "KB", "0.004ms", "0.003", "-", "0.005ms", "1.02"]
    assert lines[4].split()[-1] == "1.34"  # 64 MiB in 50 ms
    assert lines[-1].split() == ["784-50-10", "b64", "2.000ms", "1.000", "-", "3.000ms", "0.500ms", "25.0%"]


def test_bench_distributed_refuses_flags_it_would_ignore(capsys):
    from handprop.cli import main
    assert main(["bench", "--distributed", "--only", "train64", "--load"]) == 2
    assert capsys.readouterr().err.strip() == ("handprop bench: error: --distributed times handprop's data-parallel "
                                               "step alone: drop --only, --load")


def test_handprop_bench_distributed_under_mpirun(mpi_mnist, tmp_path):
    out = tmp_path / "bench.json"
    done = mpi_mnist.run(2, "-m", "handprop", "bench", "--distributed", "--quick", "--repeats", "1", "--json", out,
                         timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("2 processes x 1 BLAS thread(s)") == 1, "rank 0 alone prints"
    result = json.loads(out.read_text())
    assert result["processes"] == 2 and len(result["allreduce"]) == len(MESSAGE_BYTES)
    assert [r["model"] for r in result["steps"]] == [m[0] for m in MODELS]
    for row in result["steps"]:
        assert 0 < row["allreduce"]["median"] < row["step"]["median"] and 0 < row["share"] < 1, row
