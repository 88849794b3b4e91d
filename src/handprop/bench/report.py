"""The results: one :class:`Row` per table line, the table, and the JSON file."""
from __future__ import annotations

from typing import Any


def median(values: list[float]) -> float:
    v = sorted(values)
    k = len(v) // 2
    return v[k] if len(v) % 2 else (v[k - 1] + v[k]) / 2


class Row:
    """One line of the table: a workload's medians, their ratio, the target and the check."""

    def __init__(self, name: str, unit: str, handprop: float | None, torch: float | None = None,
                 target: str = "", met: bool | None = None, check: str = "",
                 extra: dict[str, Any] | None = None):
        self.name, self.unit, self.handprop, self.torch = name, unit, handprop, torch
        self.target, self.met, self.check, self.extra = target, met, check, extra or {}

    @property
    def ratio(self) -> float | None:
        if self.handprop is None or not self.torch:
            return None
        return self.handprop / self.torch


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1e6:.0f} us" if value < 1e-3 else f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.3g} {unit}"


def format_table(rows: list[Row]) -> str:
    header = ("workload", "handprop", "pytorch", "ratio", "target", "met", "check")
    lines = [header]
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        lines.append((r.name, _fmt(r.handprop, r.unit), _fmt(r.torch, r.unit), ratio, r.target, met, r.check))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for k, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def write_json(rows: list[Row], path: str) -> None:
    """The rows as a JSON list (every field and extra but the raw ``times``), written atomically."""
    import json

    from ..serialize import atomic_write
    with atomic_write(path, "w") as f:
        json.dump([{"name": r.name, "unit": r.unit, "handprop": r.handprop, "torch": r.torch, "ratio": r.ratio,
                    "target": r.target, "met": r.met, "check": r.check, **{k: v for k, v in r.extra.items()
                    if k != "times"}} for r in rows], f, indent=1, default=str)
