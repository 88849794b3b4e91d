"""Optimizer base: a list of Parameters, per-parameter state, zero_grad and (de)serialisation."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..nn.module import Parameter


class Optimizer:
    """Holds the parameters and per-parameter state; subclasses implement ``step``.

    Hyperparameters are plain attributes (``opt.lr`` is what a scheduler changes).
    """

    def __init__(self, params: Iterable[Parameter], lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__}: parameter {i} is {type(p).__name__}, not a Parameter "
                                "(pass model.parameters())")
        _check_nonnegative(self, "lr", lr)
        self.lr = float(lr)
        self.state: dict[Parameter, dict[str, Any]] = {p: {} for p in self.params}

    def zero_grad(self) -> None:
        """Reset every gradient buffer to zero (in place: the buffers are reused)."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        """The settings that define the update rule (saved with checkpoints)."""
        return {"lr": self.lr}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Hyperparameters and per-parameter state as flat arrays: ``state.<index>.<name>``."""
        out = {f"hyper.{k}": np.asarray(v) for k, v in self.hyperparameters().items()}
        for i, p in enumerate(self.params):
            for name, value in self.state[p].items():
                out[f"state.{i}.{name}"] = np.array(value)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` wrote, so training resumes bit for bit."""
        for key, value in state.items():
            kind, _, rest = key.partition(".")
            if kind == "hyper":
                current = getattr(self, rest)
                setattr(self, rest, type(current)(value.item()) if np.ndim(value) == 0 else tuple(value.tolist()))
            elif kind == "state":
                index, _, name = rest.partition(".")
                p = self.params[int(index)]
                self.state[p][name] = value.copy() if np.ndim(value) else value.item()
            else:
                raise ValueError(f"{type(self).__name__}.load_state_dict: unexpected key {key!r}")

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({settings})"


def _check_nonnegative(opt: Optimizer | type, name: str, value: float) -> None:
    """PyTorch-style hyperparameter validation: a ValueError naming the argument."""
    who = opt.__name__ if isinstance(opt, type) else type(opt).__name__
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{who}: invalid {name} {value!r}, expected a finite number >= 0")
