"""The results: one :class:`Row` per table line, the table, and the JSON file."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def median(values: list[float]) -> float:
    v = sorted(values)
    k = len(v) // 2
    return v[k] if len(v) % 2 else (v[k - 1] + v[k]) / 2


#: The libraries of a row, as the table heads them, and the Row attribute holding each one's figure.
LIBRARIES = {"handprop": "handprop", "pytorch": "torch", "jax": "jax", "jax scan": "jax_scan"}


@dataclass
class Row:
    """One line of the table: a workload's medians, their ratios, the check and (filled in by the
    acceptance suite) the target.

    ``workload`` names what was measured (``train64``, ``compute_gflops``...), for code that
    reads the rows; ``name`` is the table's label. ``jax`` is JAX's jitted step (or forward),
    ``jax_scan`` its ``lax.scan`` epoch. ``agree`` is whether the libraries computed the same thing
    (None: not compared); a False makes the row VOID. ``loaded`` holds each library's figure
    again with a competing busy process running (``--load``), by :data:`LIBRARIES` label.
    """

    workload: str
    name: str
    unit: str
    handprop: float | None
    torch: float | None = None
    jax: float | None = None
    jax_scan: float | None = None
    check: str = ""
    agree: bool | None = None
    target: str = ""
    met: bool | None = None
    loaded: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def value(self, label: str) -> float | None:
        return getattr(self, LIBRARIES[label])

    @property
    def ratio(self) -> float | None:
        """handprop / PyTorch."""
        if self.handprop is None or not self.torch:
            return None
        return self.handprop / self.torch

    @property
    def ratio_jax(self) -> float | None:
        """handprop / JAX's better way (the faster of step and scan, or the higher rate)."""
        values = [v for v in (self.jax, self.jax_scan) if v]
        if self.handprop is None or not values:
            return None
        return self.handprop / (max(values) if self.unit == "GF/s" else min(values))

    def slowdown(self, label: str) -> float | None:
        """How much slower ``label`` ran under load than quiet (> 1: slower; rates are inverted)."""
        quiet, loaded = self.value(label), self.loaded.get(label)
        if not quiet or not loaded:
            return None
        return quiet / loaded if self.unit == "GF/s" else loaded / quiet


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1e6:.0f} us" if value < 1e-3 else f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.3g} {unit}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _aligned(header: tuple[str, ...], cells: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell, under a rule; a column no row fills is left out."""
    keep = [i for i in range(len(header)) if i == 0 or any(line[i] not in ("", "-") for line in cells)]
    lines = [tuple(line[i] for i in keep) for line in [header, *cells]]
    widths = [max(len(line[k]) for line in lines) for k in range(len(keep))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_table(rows: list[Row]) -> str:
    """The rows as aligned text; a column no row has a value in (targets outside the acceptance
    suite, PyTorch with ``--no-torch``, JAX when it is not installed) is left out."""
    header = ("workload", "handprop", "pytorch", "ratio", "jax", "jax scan", "vs jax", "target", "met", "check")
    cells = [(r.name, _fmt(r.handprop, r.unit), _fmt(r.torch, r.unit), _ratio(r.ratio), _fmt(r.jax, r.unit),
              _fmt(r.jax_scan, r.unit), _ratio(r.ratio_jax), r.target,
              "-" if r.met is None else ("yes" if r.met else "NO"), r.check) for r in rows]
    return _aligned(header, cells)


def format_load_table(rows: list[Row]) -> str:
    """Each library's figure under load and its slowdown against the quiet run, for rows measured so."""
    labels = list(LIBRARIES)
    cells = []
    for r in rows:
        if r.loaded and r.unit != "GF/s":  # a rate row repeats its time row
            cells.append((r.name, *("-" if r.slowdown(k) is None else
                                    f"{_fmt(r.loaded[k], r.unit)} ({r.slowdown(k):.2f}x)" for k in labels)))
    return _aligned(("workload", *labels), cells)


def write_json(rows: list[Row], path: str) -> None:
    """The rows as a JSON list (every field and extra but the raw ``times``), written atomically."""
    import json

    from ..serialize import atomic_write
    with atomic_write(path, "w") as f:
        json.dump([{"workload": r.workload, "name": r.name, "unit": r.unit, "handprop": r.handprop, "torch": r.torch,
                    "jax": r.jax, "jax_scan": r.jax_scan, "ratio": r.ratio, "ratio_jax": r.ratio_jax,
                    "agree": r.agree, "target": r.target, "met": r.met, "check": r.check,
                    "loaded": r.loaded, "slowdown": {k: r.slowdown(k) for k in r.loaded},
                    **{k: v for k, v in r.extra.items() if k != "times"}} for r in rows], f, indent=1, default=str)
