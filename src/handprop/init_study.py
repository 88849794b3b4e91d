"""The notebooks' initialisation experiments as a report: how the std of the activations
evolves through a deep stack of Linear + activation blocks, for each classic init.

A batch of real (normalised) MNIST images goes through ``depth`` blocks of width ``width``,
in eval mode; a forward hook on every activation records the mean and std of its output. Each
init is drawn ``draws`` times independently and the std reported is that of the activations
of all draws pooled: one network's std at depth 50 wanders by a factor of about 1.5 either
way (a random walk in log-variance, below its mean more often than above), which the pooled
one averages out. Inits: N(0, 1),
N(0, 0.01), the EPFL practical's N(0, 1e-6), Xavier (Glorot, gain 1), Kaiming (fan_in, the
activation's gain), PyTorch's default (kaiming_uniform with a=sqrt(5), its uniform bias) and
LSUV (PyTorch's default, then layer-sequential unit variance on the same batch). Biases are zero
except under PyTorch's default (and LSUV, which starts from it), so the curves show what the
weights do. Activations: ReLU and fast.ai's GeneralReLU (leak 0.1, sub 0.4, ``--activation
general``). Expected, as in the notebooks: N(0, 1) explodes to inf, the small normals collapse
towards 0, Kaiming + ReLU keeps the std near the input's, Xavier halves the variance per ReLU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .nn import init as _init
from .nn import registry
from .nn.hooks import HookGroup
from .nn.linear import Linear
from .nn.module import Module
from .nn.sequential import Sequential

#: The depths the table reports (those within the study's depth, and the last one).
TABLE_DEPTHS = (1, 10, 25, 50)

#: The activations compared: label -> ``--activation`` name.
ACTIVATIONS = {"ReLU": "relu", "GeneralReLU": "general"}


WeightInit = Callable[[np.ndarray, np.ndarray, np.random.Generator], object]


def _zero_bias(fill_weight: Callable[[np.ndarray, np.random.Generator], object]) -> WeightInit:
    """A ``Linear(init=...)`` callable drawing the weight with ``fill_weight`` and zeroing the bias."""
    def init(weight: np.ndarray, bias: np.ndarray, rng: np.random.Generator) -> None:
        fill_weight(weight, rng)
        _init.zeros_(bias)
    return init


def _normal(std: float) -> Callable[[float], WeightInit]:
    return lambda gain: _zero_bias(lambda w, rng: _init.normal_(w, 0.0, std, rng=rng))


#: label -> (the activation's Kaiming gain -> what ``Linear(init=...)`` takes).
INITS: dict[str, Callable[[float], WeightInit | str]] = {
    "N(0, 1)": _normal(1.0),
    "N(0, 0.01)": _normal(0.01),
    "N(0, 1e-6) (EPFL)": _normal(1e-6),
    "Xavier": lambda gain: _zero_bias(lambda w, rng: _init.xavier_normal_(w, rng=rng)),
    "Kaiming": lambda gain: _zero_bias(lambda w, rng: _init.normal_(w, 0.0, gain / math.sqrt(w.shape[0]), rng=rng)),
    "PyTorch default": lambda gain: "default",
    "LSUV": lambda gain: "default",  # then lsuv_ on the batch
}


@dataclass(frozen=True)
class InitStudy:
    """``stds[(init, activation)]``: the pooled std after blocks 1..depth (inf once activations
    overflow, NaN after); ``input_std``: the std of the images going in."""

    input_std: float
    n_images: int
    width: int
    draws: int
    stds: dict[tuple[str, str], np.ndarray]

    @property
    def depth(self) -> int:
        return len(next(iter(self.stds.values())))

    def table(self) -> str:
        """The std at depths 1/10/25/50 (those within the depth, and the last), one row per run."""
        depths = sorted({d for d in TABLE_DEPTHS if d <= self.depth} | {self.depth})
        label_width = max(len(init) for init, _ in self.stds) + 2
        lines = [f"{self.n_images} MNIST images (input std {self.input_std:.3g}) through {self.depth} x "
                 f"(Linear({self.width}) + activation), {self.draws} networks per init; "
                 "std of their activations at depth:",
                 " " * label_width + "".join(f"{d:>10d}" for d in depths)]
        for activation in ACTIVATIONS:
            lines.append(activation)
            for (init, act), stds in self.stds.items():
                if act == activation:
                    lines.append(f"  {init:<{label_width - 2}}" + "".join(f"{stds[d - 1]:>10.3g}" for d in depths))
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """One column per activation: std against depth, one line per init, on a log axis over
        the whole range (top) and zoomed on [0.01, 10] around the input's std (bottom)."""
        from .figures import new_figure, save_png

        fig = new_figure(16, 9)
        axes = fig.subplots(2, len(ACTIVATIONS), sharex=True)
        depth = np.arange(1, self.depth + 1)
        for column, activation in zip(axes.T, ACTIVATIONS):
            for ax, zoom in zip(column, (False, True)):
                for (init, act), stds in self.stds.items():
                    if act == activation:
                        ax.plot(depth, np.where(stds > 0, stds, np.nan), marker=".", markersize=3,
                                label=init + _fate(stds))
                ax.axhline(self.input_std, color="black", linestyle=":", linewidth=1, label="input std")
                ax.set(yscale="log", xlim=(0, self.depth + 1), ylabel="std of the activations (log scale)")
                ax.grid(alpha=0.3)
            column[0].set_title(f"{registry.activation(ACTIVATIONS[activation])!r}: whole range")
            column[1].set(title="zoom on 0.01 .. 10", ylim=(0.01, 10), xlabel="depth (Linear + activation blocks)")
            column[0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.suptitle(f"{self.n_images} MNIST images through {self.depth} x (Linear({self.width}) + activation); "
                     f"std pooled over {self.draws} networks per init")
        return save_png(fig, path)


def _fate(stds: np.ndarray) -> str:
    """' (inf at depth 35)' or ' (0 at depth 41)' for a curve a log axis cannot show to the end."""
    bad = np.flatnonzero(~np.isfinite(stds) | (stds == 0))
    if bad.size == 0:
        return ""
    first = bad[0]
    return f" ({'0' if stds[first] == 0 else 'inf'} at depth {first + 1})"


def init_study(x: np.ndarray, depth: int = 50, width: int = 256, draws: int = 5, seed: int = 0) -> InitStudy:
    """Run every (init, activation) pair on the batch ``x`` (N, features); see the module docstring."""
    if not isinstance(x, np.ndarray) or x.ndim != 2 or len(x) < 2 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"init_study: x must be a float array (N >= 2, features), got "
                         f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
    for name, value in (("depth", depth), ("width", width), ("draws", draws)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"init_study: {name} must be a positive integer, got {value!r}")
    x = x.astype(np.float32, copy=False)
    stds = {}
    with np.errstate(all="ignore"):  # the exploding inits overflow on purpose
        for activation, name in ACTIVATIONS.items():
            entry = registry.activations()[name]
            gain = _init.calculate_gain(entry.activation.gain, entry.activation.kwargs.get("leak"))
            for i, (init, weights) in enumerate(INITS.items()):
                moments = []
                for draw in range(draws):
                    rng = np.random.default_rng([seed, i, draw])  # the same weights under both activations
                    model = _stack(x.shape[1], depth, width, name, weights(gain), rng)
                    if init == "LSUV":
                        _init.lsuv_(model, x)
                    moments.append(_activation_moments(model, x))
                stds[init, activation] = _pooled_std(np.array(moments))
    return InitStudy(float(x.std(dtype=np.float64)), len(x), width, draws, stds)


def _stack(n_in: int, depth: int, width: int, activation: str, init: WeightInit | str,
           rng: np.random.Generator) -> Sequential:
    layers: list[Module] = []
    for i in range(depth):
        layers += [Linear(n_in if i == 0 else width, width, init=init, rng=rng), registry.activation(activation)]
    return Sequential(*layers).eval()


def _activation_moments(model: Sequential, x: np.ndarray) -> np.ndarray:
    """(depth, 2): the mean and mean square of each activation's output for one forward of ``x``
    (inf where it overflowed)."""
    moments: list[tuple[float, float]] = []

    def record(module: Module, inputs: tuple, output: np.ndarray) -> None:
        if np.isinf(output).any():
            moments.append((math.inf, math.inf))
        else:
            flat = output.reshape(-1).astype(np.float64)
            moments.append((flat.mean(), np.dot(flat, flat) / flat.size))

    with HookGroup(layer.register_forward_hook(record) for layer in model.layers[1::2]):
        model(x)
    return np.array(moments)


def _pooled_std(moments: np.ndarray) -> np.ndarray:
    """The std of all draws' activations together, per depth, from (draws, depth, 2) moments."""
    mean, square = moments[..., 0].mean(axis=0), moments[..., 1].mean(axis=0)
    with np.errstate(invalid="ignore"):  # inf - inf where a draw overflowed: reported as inf
        return np.where(np.isinf(square), np.inf, np.sqrt(np.maximum(square - mean * mean, 0)))
