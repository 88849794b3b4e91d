"""The results: one :class:`Row` per table line, the table, and the JSON file."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def median(values: list[float]) -> float:
    v = sorted(values)
    k = len(v) // 2
    return v[k] if len(v) % 2 else (v[k - 1] + v[k]) / 2


@dataclass
class Row:
    """One line of the table: a workload's medians, their ratio, the check and (filled in by the
    acceptance suite) the target.

    ``workload`` names what was measured (``train64``, ``compute_gflops``...), for code that
    reads the rows; ``name`` is the table's label. ``agree`` is whether both libraries computed
    the same thing (None: not compared); a False makes the row VOID.
    """

    workload: str
    name: str
    unit: str
    handprop: float | None
    torch: float | None = None
    check: str = ""
    agree: bool | None = None
    target: str = ""
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

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
    """The rows as aligned text; a column no row has a value in (targets outside the acceptance
    suite, PyTorch with ``--no-torch``) is left out."""
    header = ("workload", "handprop", "pytorch", "ratio", "target", "met", "check")
    cells = [(r.name, _fmt(r.handprop, r.unit), _fmt(r.torch, r.unit),
              "-" if r.ratio is None else f"{r.ratio:.2f}", r.target,
              "-" if r.met is None else ("yes" if r.met else "NO"), r.check) for r in rows]
    keep = [i for i in range(len(header)) if i == 0 or any(line[i] not in ("", "-") for line in cells)]
    lines = [tuple(line[i] for i in keep) for line in [header, *cells]]
    widths = [max(len(line[k]) for line in lines) for k in range(len(keep))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def write_json(rows: list[Row], path: str) -> None:
    """The rows as a JSON list (every field and extra but the raw ``times``), written atomically."""
    import json

    from ..serialize import atomic_write
    with atomic_write(path, "w") as f:
        json.dump([{"workload": r.workload, "name": r.name, "unit": r.unit, "handprop": r.handprop, "torch": r.torch,
                    "ratio": r.ratio, "agree": r.agree, "target": r.target, "met": r.met, "check": r.check,
                    **{k: v for k, v in r.extra.items() if k != "times"}} for r in rows], f, indent=1, default=str)
