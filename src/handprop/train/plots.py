"""Training curves and the confusion matrix as Figures and PNG files (matplotlib, imported on use).

Each plot is drawn on its own ``matplotlib.figure.Figure``, never through pyplot: the user's
backend and pyplot's figures (a notebook's inline plots) are left exactly as they were.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..figures import new_figure, save_png


def curves_figure(history: Sequence[dict], valid_name: str = "valid") -> Any:
    """A ``Figure``: loss and accuracy per epoch, train vs ``valid_name``, side by side."""
    fig = new_figure(10, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [r["epoch"] for r in history]
    for prefix, style in (("train", "-o"), (valid_name, "-s")):
        if any(f"{prefix}_loss" in r for r in history):
            marker = style if len(epochs) <= 30 else "-"
            ax_loss.plot(epochs, [r.get(f"{prefix}_loss", np.nan) for r in history], marker, label=prefix)
            ax_acc.plot(epochs, [100 * r.get(f"{prefix}_accuracy", np.nan) for r in history], marker, label=prefix)
    ax_loss.set(title="loss", xlabel="epoch")
    ax_acc.set(title="accuracy (%)", xlabel="epoch")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # an empty history (diverged in epoch 1) has no lines
            ax.legend()
    return fig


def plot_curves(history: Sequence[dict], path: str | Path, valid_name: str = "valid") -> Path:
    """:func:`curves_figure` written to ``path`` as a PNG."""
    return save_png(curves_figure(history, valid_name), path, dpi=110)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: str | Path, title: str = "") -> Path:
    """The (true x predicted) count matrix as a heat map with the counts written in."""
    c = len(classes)
    fig = new_figure(1.0 + 0.6 * c, 0.8 + 0.6 * c)
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(c), yticks=range(c), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title=title)
    ax.tick_params(axis="x", labelrotation=45 if max(map(len, classes)) > 2 else 0)
    threshold = matrix.max() / 2
    for i in range(c):
        for j in range(c):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > threshold else "black")
    return save_png(fig, path, dpi=110)
