"""The tables of ``handprop bench --distributed`` (the measuring itself runs under mpirun)."""
from __future__ import annotations

from handprop.distributed.bench import MESSAGE_BYTES, Timing, format_report


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
