"""examples/quickstart.ipynb runs top to bottom: its code cells, in order, in one namespace
(as a kernel would), in a fresh folder, on the real MNIST."""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"
#: One epoch on 10,000 images reaches 91.2 % (seeded); the floor leaves room for BLAS rounding.
ACCURACY_FLOOR = 0.88


def code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4
    return ["".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == "code"]


def test_quickstart_notebook_runs_top_to_bottom(data_root, tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    matplotlib.use("Agg")  # this test process only: the notebook itself sets no backend
    monkeypatch.setenv("HANDPROP_DATA", str(data_root))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, source in enumerate(code_cells(NOTEBOOK)):
            exec(compile(source, f"{NOTEBOOK.name}[code cell {i}]", "exec"), namespace)
    printed = out.getvalue()

    assert isinstance(namespace["fig"], Figure) and len(namespace["fig"].axes) == 2
    assert (tmp_path / "quickstart.npz").is_file(), "saved into the working folder"
    assert "reloaded model gives the same outputs: True" in printed, printed
    assert re.search(r"^gradcheck Linear", printed, re.M), printed
    match = re.search(r"validation accuracy: (\d\.\d{4})$", printed, re.M)
    assert match, printed
    accuracy = float(match.group(1))
    assert accuracy > ACCURACY_FLOOR, printed
    # the reloaded model's accuracy is the one the Recorder measured during training
    assert accuracy == pytest.approx(namespace["learn"].history[-1]["valid_accuracy"], abs=1e-4)
