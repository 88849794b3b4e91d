"""Optimizer base: a list of Parameters, per-parameter state, zero_grad and (de)serialisation."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

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
        """The settings that define the update rule (saved with checkpoints). Each is a keyword
        argument of the constructor of the same name, which checks its value on a restore too."""
        return {"lr": self.lr}

    def state_fields(self) -> dict[str, str]:
        """The per-parameter state :meth:`step` keeps, by name: ``"param"`` (an array shaped like
        the parameter) or ``"count"`` (how many steps updated it). Nothing else is restored."""
        return {}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Hyperparameters and per-parameter state as flat arrays: ``state.<index>.<name>``."""
        out = {f"hyper.{k}": np.asarray(v) for k, v in self.hyperparameters().items()}
        for i, p in enumerate(self.params):
            for name, value in self.state[p].items():
                out[f"state.{i}.{name}"] = np.array(value)
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray], steps: int | None = None) -> None:
        """Restore what :meth:`state_dict` wrote, so training resumes bit for bit.

        ``state`` may come from a file, so all of it is checked before anything changes: every
        hyperparameter of this optimiser and no other (values checked by the constructor), and
        for every parameter or for none, exactly the :meth:`state_fields`, finite and shaped like
        the parameter. With ``steps`` (the training steps taken when it was saved) the state must
        agree: none before the first step, every count equal to ``steps``. No attribute is set
        by a name read from ``state``.
        """
        where = f"{type(self).__name__}.load_state_dict"
        current = self.hyperparameters()
        known = {f"hyper.{name}" for name in current}
        _no_unexpected(where, [k for k in state if k not in known and not k.startswith("state.")])
        missing = sorted(known - state.keys())
        if missing:
            raise ValueError(f"{where}: missing {missing[0]!r}")
        checked = type(self)(self.params, **{name: _hyperparameter(state[f"hyper.{name}"], value, f"{where}: hyper.{name}")
                                            for name, value in current.items()})
        fields = checked.state_fields()
        keys = [{name: f"state.{i}.{name}" for name in fields} for i in range(len(self.params))]
        _no_unexpected(where, [k for k in state if k.startswith("state.")
                               and k not in {key for param_keys in keys for key in param_keys.values()}])
        restored = {}
        for p, param_keys in zip(self.params, keys):
            present = [key for key in param_keys.values() if key in state]
            if present and len(present) != len(fields):
                raise ValueError(f"{where}: {', '.join(present)} without the rest of {', '.join(param_keys.values())}")
            restored[p] = {name: _state_value(state[key], fields[name], p, f"{where}: {key}")
                           for name, key in param_keys.items() if present}
        if steps is not None:
            _check_steps(restored, fields, steps, where)
        for name in current:  # names from hyperparameters(), never from the file
            setattr(self, name, getattr(checked, name))
        self.state = restored

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({settings})"


def _no_unexpected(where: str, keys: list[str]) -> None:
    if keys:
        raise ValueError(f"{where}: unexpected key {sorted(keys)[0]!r}")


def _hyperparameter(value: np.ndarray, current: Any, where: str) -> Any:
    """``value`` as the type of the hyperparameter's ``current`` value: a bool, a float, or a
    tuple of floats (Adam's betas), from an array of that shape."""
    value = np.asarray(value)
    if isinstance(current, bool):
        shape, kinds, convert = (), "b", bool
    elif isinstance(current, tuple):
        shape, kinds, convert = (len(current),), "f", lambda v: tuple(float(x) for x in v)
    else:
        shape, kinds, convert = (), "f", float
    if value.shape != shape or value.dtype.kind not in kinds:
        raise ValueError(f"{where} must be a {'bool' if kinds == 'b' else 'float'} array of shape {shape}, "
                         f"got {value.dtype} of shape {value.shape}")
    return convert(value.tolist())


def _state_value(value: np.ndarray, kind: str, p: Parameter, where: str) -> np.ndarray | int:
    """A checked copy of one per-parameter state value (see :meth:`Optimizer.state_fields`)."""
    value = np.asarray(value)
    if kind == "count":
        if value.shape != () or value.dtype.kind not in "iu" or not 1 <= value.item() <= 2 ** 53:
            raise ValueError(f"{where} must be a positive integer, got {value.dtype} "
                             f"{value.item() if value.shape == () else value.shape}")
        return int(value)
    if value.shape != p.data.shape or value.dtype.kind != "f":
        raise ValueError(f"{where} must be a float array of shape {p.data.shape} like its parameter, "
                         f"got {value.dtype} of shape {value.shape}")
    if not np.isfinite(value).all():
        raise ValueError(f"{where} holds NaN or infinite values")
    return value.astype(p.data.dtype)


def _check_steps(restored: dict[Parameter, dict], fields: dict[str, str], steps: int, where: str) -> None:
    """State present exactly when steps were taken, and every count equal to ``steps``."""
    if not fields:
        return
    if any(bool(s) != (steps > 0) for s in restored.values()):
        raise ValueError(f"{where}: after {steps} steps every parameter has its state ({', '.join(fields)})"
                         if steps else f"{where}: there is no state before the first step")
    counts = {s[name] for s in restored.values() if s for name, kind in fields.items() if kind == "count"}
    if counts - {steps}:
        raise ValueError(f"{where}: step counts {sorted(counts)[:3]} disagree with the {steps} steps taken")


def _check_nonnegative(opt: Optimizer | type, name: str, value: float) -> None:
    """PyTorch-style hyperparameter validation: a ValueError naming the argument."""
    who = opt.__name__ if isinstance(opt, type) else type(opt).__name__
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{who}: invalid {name} {value!r}, expected a finite number >= 0")
