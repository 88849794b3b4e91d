"""Notebook use: ``Learner.plot_curves()`` returns a Figure without touching pyplot, and the
progress bars render in a Jupyter kernel's output stream but not in files or pipes."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from handprop.train import ProgressBar, Recorder
from handprop.train.callbacks import renders_bars
from handprop.train.plots import plot_curves
from .helpers import PNG_SIGNATURE
from .tiny import make_learner

matplotlib = pytest.importorskip("matplotlib")


class KernelStream(io.StringIO):
    """Stands in for ipykernel's ``OutStream``: not a tty, defined in an ipykernel module."""


KernelStream.__module__ = "ipykernel.iostream"


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def in_kernel(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", sys.modules.get("ipykernel") or type(sys)("ipykernel"))


def test_bars_on_a_terminal_and_in_a_kernel_plain_lines_elsewhere(monkeypatch, in_kernel):
    assert renders_bars(TtyStream())
    assert renders_bars(KernelStream())
    assert not renders_bars(io.StringIO()), "a file opened inside a notebook gets plain lines"
    monkeypatch.delitem(sys.modules, "ipykernel")
    assert not renders_bars(KernelStream()), "no kernel running: the class name alone is not enough"
    assert not renders_bars(io.StringIO())


def test_progress_bar_draws_tqdm_in_a_kernel(in_kernel):
    pytest.importorskip("tqdm")
    stream = KernelStream()
    bar = ProgressBar(stream=stream)
    assert bar.use_bars and not ProgressBar(stream=KernelStream(), every=2).use_bars
    make_learner(n_train=3, n_valid=1, callbacks=[Recorder(), bar]).fit(1)
    out = stream.getvalue()
    assert "epoch 1/1 train" in out, out  # the tqdm bar's description (std tqdm here: no IPython)
    assert ProgressBar(stream=io.StringIO()).use_bars is False


def fitted(epochs: int = 3, valid_name: str = "valid"):
    learn = make_learner(n_train=2, n_valid=1, callbacks=[Recorder(valid_name)])
    return learn.fit(epochs)


def test_learner_plot_curves_returns_a_figure_with_one_line_per_series():
    from matplotlib.figure import Figure

    learn = fitted(3, valid_name="test")
    fig = learn.plot_curves()
    assert isinstance(fig, Figure)
    ax_loss, ax_acc = fig.axes
    assert (ax_loss.get_title(), ax_acc.get_title()) == ("loss", "accuracy (%)")
    assert ax_loss.get_xlabel() == ax_acc.get_xlabel() == "epoch"
    for ax, metric, scale in ((ax_loss, "loss", 1), (ax_acc, "accuracy", 100)):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == ["test", "train"]
        for prefix, line in lines.items():
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
            np.testing.assert_allclose(line.get_ydata(),
                                       [scale * r[f"{prefix}_{metric}"] for r in learn.history])


def test_plot_curves_leaves_pyplot_and_the_backend_alone():
    import matplotlib.pyplot as plt

    backend, before = matplotlib.get_backend(), plt.get_fignums()
    fitted(2).plot_curves()
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == before == []


def test_the_png_writer_still_writes_a_png(tmp_path):
    learn = fitted(2)
    path = plot_curves(learn.history, tmp_path / "curves.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_curves_needs_a_recorder():
    with pytest.raises(ValueError, match="no Recorder"):
        make_learner(callbacks=[]).fit(1).plot_curves()
