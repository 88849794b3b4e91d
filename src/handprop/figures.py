"""PNG figures drawn on ``matplotlib.figure.Figure`` objects (matplotlib imported on use).

No pyplot: a Figure made here never touches the pyplot state machine, so drawing one inside a
notebook does not change its backend or its current figure.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from .serialize import atomic_write


def have_matplotlib(files: str, stream: TextIO | None = None) -> bool:
    """True if matplotlib imports; else print a note that ``files`` are skipped and return False."""
    try:
        import matplotlib  # noqa: F401  (optional: the [cli] extra)
    except ImportError:
        print(f"note: matplotlib is not installed: skipped {files} (pip install 'handprop[cli]' to get them)",
              file=stream or sys.stderr)
        return False
    return True


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    """A ``matplotlib.figure.Figure`` of ``width`` x ``height`` inches (constrained layout unless
    ``layout=None``: large grids place their panels by hand, which draws twice as fast)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout=layout)


def save_png(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically."""
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=dpi)
    return path
