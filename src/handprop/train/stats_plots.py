"""``stats.png``: ActivationStats as one row of panels per layer, then the parameters' row."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..figures import new_figure, save_png

#: The update-to-weight ratio usually called healthy (drawn as a reference line).
HEALTHY_RATIO = 1e-3


def plot_stats(stats: dict[str, Any], path: str | Path) -> Path:
    """Per layer: mean and std over steps, % near zero, and the histogram of |activations| over
    time (colour: log(1 + count); fast.ai's "colorful dimension"). Last row: per parameter, the
    gradient norm and the update-to-weight ratio. ``stats`` is :meth:`ActivationStats.as_dict`."""
    layers, steps = stats["layers"], np.asarray(stats["steps"])
    height = 2.4 * (len(layers) + 1)
    fig = new_figure(14, height, layout=None)
    if steps.size == 0:
        fig.text(0.5, 0.5, "no training step was recorded", ha="center", va="center")
        return save_png(fig, path)
    # margins in inches (title above, tick labels and axis label below), whatever the row count
    fig.subplots_adjust(left=0.06, right=0.97, top=1 - 0.35 / height, bottom=0.55 / height,
                        hspace=0.75, wspace=0.28)
    axes = fig.subplots(len(layers) + 1, 3, squeeze=False)
    for row, layer in zip(axes, layers):
        _layer_row(row, layer, steps, stats)
    _params_row(axes[-1], stats["params"], steps)
    return save_png(fig, path)


def _layer_row(row, layer: dict, steps: np.ndarray, stats: dict) -> None:
    ax_moments, ax_zero, ax_hist = row
    title = f"{layer['name']}: {layer['layer']}"
    ax_moments.plot(steps, _floats(layer["mean"]), label="mean")
    ax_moments.plot(steps, _floats(layer["std"]), label="std")
    ax_moments.set(title=title, xlabel="training step", ylabel="activation")
    ax_moments.legend(loc="best", fontsize="small")
    ax_zero.plot(steps, 100 * _floats(layer["near_zero"]), color="tab:red")
    ax_zero.set(title=f"{layer['name']}: near zero", xlabel="training step",
                ylabel=f"% with |a| < {stats['zero_tol']:g}", ylim=(-2, 102))
    counts = np.log1p(np.asarray(layer["hist"], dtype=float).T)  # (bins, steps), small |a| at the bottom
    image = ax_hist.imshow(counts, origin="lower", aspect="auto", interpolation="nearest", cmap="viridis",
                           extent=(steps[0] - 0.5, steps[-1] + 0.5, 0, stats["hist_max"]))
    ax_hist.set(title=f"{layer['name']}: histogram of |activation|", xlabel="training step",
                ylabel="|activation|")
    ax_hist.figure.colorbar(image, ax=ax_hist, label="log(1 + count)")
    for ax in (ax_moments, ax_zero):
        ax.grid(alpha=0.3)


def _params_row(row, params: list[dict], steps: np.ndarray) -> None:
    ax_grad, ax_ratio, ax_legend = row
    for p in params:
        ax_grad.plot(steps, _floats(p["grad_norm"]), label=p["name"])
        ax_ratio.plot(steps, _floats(p["update_ratio"]), label=p["name"])
    ax_grad.set(title="gradient norm per parameter", xlabel="training step", ylabel="||grad||", yscale="log")
    ax_ratio.axhline(HEALTHY_RATIO, color="black", linestyle="--", linewidth=1)
    ax_ratio.set(title=f"update / weight (dashed: {HEALTHY_RATIO:g})", xlabel="training step",
                 ylabel="||step|| / ||w||", yscale="log")
    for ax in (ax_grad, ax_ratio):
        ax.grid(alpha=0.3)
    ax_legend.axis("off")
    ax_legend.legend(*ax_grad.get_legend_handles_labels(), loc="center left", title="parameter")


def _floats(values: list) -> np.ndarray:
    """JSON numbers with None (non-finite when recorded) as NaN, which matplotlib leaves out."""
    return np.array(values, dtype=float)
