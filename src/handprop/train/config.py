"""The configuration of a training run: one typed dataclass, built once, validated in one place.

``TrainConfig.create(recipe, **settings)`` starts from the defaults, applies a recipe (one of
the notebooks' experiments), then the explicit settings, which win. ``__post_init__`` checks
every field and every combination, so a TrainConfig that exists trains as it says and no
setting is silently ignored; what was left to the optimiser or the batch mode (``lr``,
``weight_decay``, ``shuffle``, ``log_every``, ``init_std``) is then filled in, so a saved
config says what ran.

Each field carries its :class:`Setting` (type, range, choices, help, flag); ``handprop train``'s
options are generated from them, so a new setting is one field here plus its use in
:mod:`.build`. ``to_dict``/``from_dict`` round-trip through JSON (metrics.json and the
checkpoints hold the config) and read the dict format of earlier versions.
"""
from __future__ import annotations

import math
import os
from dataclasses import Field, dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping

from .. import nn
from ..data.datasets import DATASETS
from ..errors import UsageError
from ..optim.lr_scheduler import SCHEDULES


@dataclass(frozen=True)
class Switch:
    """A flag that sets its field to a fixed value (``--full-batch``: ``batch_size=None``)."""

    option: str
    value: Any
    help: str


@dataclass(frozen=True)
class Setting:
    """What a config field accepts, and how ``handprop train`` offers it.

    ``kind``: int, float, bool or str (``many``: a non-empty tuple of them, the flag repeated).
    ``low``: the smallest value allowed (``above``: excluded). ``choices``: the allowed strings,
    or a function returning them (the layer registry is read when asked). ``optional``: None is
    allowed; the help says what it means. ``per_n``: also ``"<number>/N"``, a per-sample rate
    divided by the training-set size. ``flag``: offered as ``--name`` (bools as ``--name/--no-name``);
    False for recipe-only settings. ``switches``: flags that set a fixed value. ``follows``: a
    recipe's value is dropped when this other setting is given a value of its own (a recipe's
    lr was chosen for its optimiser, not for the one the user asks for).
    """

    kind: type
    help: str = ""
    low: float | None = None
    above: bool = False
    choices: tuple[str, ...] | Callable[[], Iterable[str]] = ()
    optional: bool = False
    many: bool = False
    per_n: bool = False
    flag: bool = True
    switches: tuple[Switch, ...] = ()
    follows: str | None = None
    metavar: str | None = None

    def allowed(self) -> tuple[str, ...]:
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def check(self, value: Any) -> Any:
        """``value`` in its normal form (ints as floats for float settings, lists as tuples,
        paths as str), or a ValueError saying what was expected."""
        if value is None:
            if self.optional:
                return None
            raise ValueError("must be set, got None")
        if self.many:
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"must be a non-empty list, got {value!r}")
            return tuple(self.check_one(v) for v in value)
        return self.check_one(value)

    def check_one(self, value: Any) -> Any:
        """:meth:`check` for one value (one element of a ``many`` setting)."""
        if self.per_n and isinstance(value, str) and value.endswith("/N"):
            try:
                self.check_one(float(value[:-2]))
            except ValueError:
                raise ValueError(f"must be a number > 0 or <number>/N, got {value!r}") from None
            return value
        if self.kind is str and isinstance(value, os.PathLike):
            value = os.fspath(value)
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (isinstance(value, bool) and self.kind is not bool):
            raise ValueError(f"must be {_KIND_NAMES[self.kind]}, got {value!r}")
        if self.kind is float and not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        if self.kind is int and abs(value) >= _INT_LIMIT:  # no setting needs more; a file could ask it
            raise ValueError(f"must be below {_INT_LIMIT:,}, got {value!r}")
        if self.low is not None and not (value > self.low if self.above else value >= self.low):
            raise ValueError(f"must be {'>' if self.above else '>='} {self.low:g}, got {value!r}")
        allowed = self.allowed()
        if allowed and value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def from_text(self, text: str) -> Any:
        """A command-line value (one element of a ``many`` setting), converted and checked."""
        try:
            value = self.kind(text) if self.kind in (int, float) else text
        except ValueError:
            value = text  # check_one names what was expected
        return self.check_one(value)


#: The magnitude every integer setting stays below (2**31: widths, counts, seeds).
_INT_LIMIT = 2 ** 31
_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _field(default: Any, kind: type, help: str = "", **options: Any) -> Any:
    """A dataclass field with its :class:`Setting`."""
    return field(default=default, metadata={"setting": Setting(kind, help, **options)})


def _activation_names() -> tuple[str, ...]:
    return tuple(nn.registry.activations())


def _loss_names() -> tuple[str, ...]:
    return tuple(nn.registry.losses())


#: Per-optimiser defaults, used where neither the recipe nor a setting gives a value.
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.1, "weight_decay": 0.0},
    "adam": {"lr": 3e-3, "weight_decay": 0.0},
    "adamw": {"lr": 3e-3, "weight_decay": 0.01},
}

#: The std of ``init="normal"`` when none is given.
DEFAULT_INIT_STD = 0.01

#: The architectures of ``--model`` (built in :func:`handprop.train.build.model_spec`).
MODELS = ("mlp", "cnn", "resnet")

INITS = ("default", "kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal", "normal", "lsuv")

#: Per-model defaults: over the plain defaults, under a recipe and explicit settings (an lr or a
#: weight decay here follows the optimizer, as a recipe's does). The conv models train as fast.ai's
#: miniai does: batch 256 (the fastest per image here) and a peak lr of 1e-2 with one cycle; the
#: resnet with GeneralReLU (leak 0.1, shifted down 0.4). The cnn keeps ReLU, which PyTorch has, so
#: its default network exports to PyTorch as plain torch.nn modules (and is what the bench times);
#: on MNIST it did as well (3 epochs with --augment: 99.32% and 99.35% on seeds 0 and 1).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "cnn": {"batch_size": 256, "lr": 1e-2},
    "resnet": {"batch_size": 256, "lr": 1e-2, "activation": "general"},
}


def _by_model(name: str) -> str:
    """What :data:`MODEL_DEFAULTS` sets ``name`` to, for a help text: ``"; cnn and resnet: 256"``."""
    models: dict[Any, list[str]] = {}
    for model, values in MODEL_DEFAULTS.items():
        if name in values:
            models.setdefault(values[name], []).append(model)
    return "".join(f"; {' and '.join(ms)}: {format(v, 'g') if isinstance(v, float) else v}"
                   for v, ms in models.items())


#: The notebooks' experiments; explicit settings override them.
RECIPES: dict[str, dict[str, Any]] = {
    # fast.ai lesson 9's training loop: raw [0, 1] pixels (no normalisation), plain SGD, 1 epoch,
    # batches in the dataset's order as in the notebook.
    "fastai": {"hidden": (50,), "activation": "relu", "loss": "ce", "init": "default",
               "optimizer": "sgd", "lr": 0.5, "schedule": "none", "batch_size": 64, "epochs": 1,
               "normalize": False, "shuffle": False},
    # EPFL deep-learning practical 3: tanh MLP, summed MSE against 0.9-scaled {-1, +1} one-hot
    # targets, N(0, 1e-6) init, full-batch gradient descent with lr 0.1/N for 1,000 steps on the
    # first 1,000 training and test images; the test set is evaluated at every step.
    "epfl": {"hidden": (50,), "activation": "tanh", "output_activation": "tanh",
             "loss": "mse", "reduction": "sum", "target_on": 0.9, "target_off": -0.9,
             "init": "normal", "init_std": 1e-6, "optimizer": "sgd", "lr": "0.1/N", "schedule": "none",
             "batch_size": None, "epochs": 1000, "subset": 1000, "test_subset": 1000, "valid": 0,
             "log_every": 100, "metric": "error"},
}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. The plain ``TrainConfig()`` is ``handprop train``: a
    784-256-10 ReLU MLP, AdamW with a one-cycle schedule, 5 epochs of batch 64 on normalised
    MNIST (about 98% test accuracy in a few seconds). Build it with :meth:`create`, which also
    applies the conv models' :data:`MODEL_DEFAULTS`."""

    recipe: str | None = _field(None, str, "reproduce a notebook: fastai (784-50-10 ReLU, SGD lr 0.5, "
                               "1 epoch, raw pixels) or epfl (tanh MLP, MSE, full-batch GD, 1,000 steps)",
                               choices=tuple(RECIPES), optional=True)
    dataset: str = _field("mnist", str, "which dataset", choices=tuple(DATASETS))
    data_dir: str | None = _field(None, str, "folder holding the four IDX files (searched first; downloads "
                                 "go there)", optional=True, metavar="DIR")
    download: bool = _field(True, bool, flag=False, switches=(
        Switch("--offline", False, "never download; fail if no local copy is found"),))
    model: str = _field("mlp", str, "architecture: mlp (Linear layers of --hidden), cnn (stride-2 3x3 convs "
                       "with BatchNorm), resnet (residual blocks); the conv models take (N, 1, 28, 28) images",
                       choices=MODELS)
    hidden: tuple[int, ...] = _field((256,), int, "hidden layer width; repeat for depth", low=1, many=True,
                                    metavar="N")
    activation: str = _field("relu", str, f"hidden-layer activation{_by_model('activation')}", choices=_activation_names)
    output_activation: str | None = _field(None, str, "activation after the output layer", optional=True,
                                          choices=_activation_names, flag=False)
    loss: str = _field("ce", str, "ce: cross-entropy on labels; mse: MSE on one-hot targets",
                      choices=_loss_names)
    reduction: str = _field("mean", str, "how the loss combines a batch", choices=("mean", "sum"), flag=False)
    target_on: float = _field(1.0, float, "one-hot target of the true class (mse)", flag=False)
    target_off: float = _field(0.0, float, "one-hot target of the other classes (mse)", flag=False)
    init: str = _field("kaiming_normal", str, "weight init", choices=INITS)
    init_std: float | None = _field(None, float, f"std of the normal init (default {DEFAULT_INIT_STD})",
                                   low=0, above=True, optional=True, follows="init", metavar="STD")
    optimizer: str = _field("adamw", str, "adamw and adam default to lr 3e-3, sgd to lr 0.1",
                           choices=tuple(OPTIMIZER_DEFAULTS))
    lr: float | str | None = _field(None, float, "learning rate (peak rate with a schedule; default: the "
                                   f"optimizer's{_by_model('lr')})", low=0, above=True, optional=True, per_n=True,
                                   follows="optimizer")
    momentum: float = _field(0.0, float, "SGD momentum", low=0, follows="optimizer")
    nesterov: bool = _field(False, bool, "Nesterov momentum (SGD with momentum)", follows="optimizer")
    weight_decay: float | None = _field(None, float, "weight decay (default: adamw 0.01, else 0)", low=0,
                                       optional=True, follows="optimizer")
    schedule: str = _field("onecycle", str, "learning-rate schedule", choices=("none", *SCHEDULES))
    batch_size: int | None = _field(64, int, f"mini-batch size{_by_model('batch_size')}", low=1, optional=True, switches=(
        Switch("--full-batch", None, "full-batch gradient descent"),))
    shuffle: bool | None = _field(None, bool, "reshuffle the training set every epoch (default: with "
                                 "mini-batches; the fastai recipe: no)", optional=True)
    epochs: int = _field(5, int, "epochs (steps with --full-batch)", low=1)
    subset: int | None = _field(None, int, "train on the first N training images", low=1, optional=True,
                               metavar="N")
    test_subset: int | None = _field(None, int, "test on the first N test images", low=1, optional=True,
                                    flag=False)
    valid: int = _field(10000, int, "validation images split off the end of the training set (0: none)",
                       low=0, metavar="N")
    normalize: bool = _field(True, bool, flag=False, switches=(
        Switch("--no-normalize", False, "keep raw [0, 1] pixels"),))
    augment: bool = _field(False, bool, "training-time augmentation: random crop with 2-pixel padding, random "
                           "erasing, and a horizontal flip on fashion-mnist (never on digits)")
    tta: bool = _field(False, bool, "test-time augmentation: the test figures average the logits of each image "
                       "and of its mirror image (fashion-mnist with --augment) or of its one-pixel shifts "
                       "(otherwise)")
    seed: int = _field(0, int, "seed of the initial weights and the batch order", low=0)
    patience: int | None = _field(None, int, "early stopping after N epochs without improvement of the "
                                 "validation loss", low=1, optional=True, metavar="N")
    log_every: int | None = _field(None, int, "print every N epochs/steps (default 1; full batch: a tenth "
                                  "of the steps)", low=1, optional=True, metavar="N")
    stats: bool = _field(False, bool, flag=False, switches=(
        Switch("--stats", True, "record activation statistics (every 4th step): stats.json, stats.png and a "
               "warning for dead or collapsed layers"),))
    metric: str = _field("accuracy", str, "the column printed beside the losses",
                        choices=("accuracy", "error"), flag=False)

    # -- building ----------------------------------------------------------------------------------
    @classmethod
    def create(cls, recipe: str | None = None, **settings: Any) -> TrainConfig:
        """The defaults, then the model's (:data:`MODEL_DEFAULTS`), then ``recipe``'s values, then
        ``settings``, which win. A model's or recipe's value that follows a setting given another
        value (its lr follows its optimizer) is dropped."""
        _check_names(settings, "setting")
        values = RECIPES.get(recipe, {}) if isinstance(recipe, str) else {}
        values = {**MODEL_DEFAULTS.get(settings.get("model", values.get("model")), {}), **values}
        changed = {k for k, v in settings.items() if values.get(k, getattr(cls, k)) != v}
        kept = {k: v for k, v in values.items() if setting(k).follows not in changed}
        return cls(**{**kept, **settings, "recipe": recipe})

    def __post_init__(self) -> None:
        for f in fields(self):
            try:
                value = _setting_of(f).check(getattr(self, f.name))
            except ValueError as e:
                raise UsageError(f"{f.name} {e}", [f.name]) from None
            object.__setattr__(self, f.name, value)
        self._check_combinations()
        self._fill_in()

    def _check_combinations(self) -> None:
        """Refuse a setting that the others would make ineffective."""
        sgd = self.optimizer == "sgd"
        if self.momentum and not sgd:
            raise UsageError(f"momentum={self.momentum:g} applies to optimizer=sgd only "
                             f"(got optimizer={self.optimizer})", ["momentum", "optimizer"])
        if self.nesterov and not sgd:
            raise UsageError(f"nesterov=True applies to optimizer=sgd only (got optimizer={self.optimizer})",
                             ["nesterov", "optimizer"])
        if self.nesterov and not self.momentum:
            raise UsageError("nesterov=True needs momentum > 0", ["nesterov", "momentum"])
        if self.init_std is not None and self.init != "normal":
            raise UsageError(f"init_std={self.init_std:g} applies to init=normal only (got init={self.init})",
                             ["init_std", "init"])
        if self.shuffle and self.batch_size is None:
            raise UsageError("shuffle=True needs mini-batches: one full batch has no order (got batch_size=None)",
                             ["shuffle", "batch_size"])
        if self.model != "mlp":
            mlp_only = [name for name in ("hidden", "output_activation") if getattr(self, name) != _FIELDS[name].default]
            if mlp_only:
                raise UsageError(f"{mlp_only[0]}={_text(getattr(self, mlp_only[0]))} applies to model=mlp only "
                                 f"(got model={self.model})", [mlp_only[0], "model"])
        if self.patience is not None and not self.valid:
            raise UsageError(f"patience={self.patience} needs a validation split (valid > 0): early stopping "
                             "must not watch the test set", ["patience", "valid"])

    def _fill_in(self) -> None:
        """Settings left to the optimiser or the batch mode get their value."""
        filled = {k: v for k, v in OPTIMIZER_DEFAULTS[self.optimizer].items() if getattr(self, k) is None}
        if self.shuffle is None:
            filled["shuffle"] = not self.full_batch
        if self.log_every is None:  # one step per epoch: log (and checkpoint) about ten times
            filled["log_every"] = max(1, self.epochs // 10) if self.full_batch else 1
        if self.init_std is None and self.init == "normal":
            filled["init_std"] = DEFAULT_INIT_STD
        for name, value in filled.items():
            object.__setattr__(self, name, value)

    @property
    def full_batch(self) -> bool:
        """One batch holding the whole training set (``batch_size=None``)."""
        return self.batch_size is None

    # -- describing and saving ---------------------------------------------------------------------
    def changes(self, skip: Iterable[str] = ()) -> list[str]:
        """``"name value"`` for every setting (but ``skip``) that differs from ``TrainConfig()``."""
        default, skip = TrainConfig(), set(skip)
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in skip or value == getattr(default, f.name):
                continue
            label = f.name.replace("_", " ")
            out.append(label if value is True else f"no {label}" if value is False else f"{label} {_text(value)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples as lists) that :meth:`from_dict` reads back."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> TrainConfig:
        """The config :meth:`to_dict` wrote (or an earlier version's dict); settings it lacks get
        their defaults (they are newer than the file). ``where`` names the file in errors."""
        if not isinstance(data, Mapping):
            raise UsageError(f"{where}: the saved config is not a JSON object")
        values = _from_format_1(data) if "full_batch" in data else dict(data)
        try:
            _check_names(values, "saved setting")
            return cls(**values)
        except UsageError as e:  # about the file, not about anything the user typed
            raise UsageError(f"{where}: {e}") from None


def setting(name: str) -> Setting:
    """The :class:`Setting` of config field ``name``."""
    return _setting_of(_FIELDS[name])


def settings() -> dict[str, Setting]:
    """Config field name -> its :class:`Setting`, in field order."""
    return {name: _setting_of(f) for name, f in _FIELDS.items()}


def _setting_of(f: Field) -> Setting:
    return f.metadata["setting"]


_FIELDS: dict[str, Field] = {f.name: f for f in fields(TrainConfig)}


def _check_names(values: Mapping[str, Any], what: str) -> None:
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise UsageError(f"unknown {what} {unknown[0]!r}; expected one of {', '.join(_FIELDS)}")


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return "-".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _from_format_1(old: Mapping[str, Any]) -> dict[str, Any]:
    """The dict handprop 0.1 saved (``full_batch`` beside ``batch_size``), read as it ran:
    the settings that format silently ignored are dropped."""
    values = dict(old)
    if values.pop("full_batch"):
        values["batch_size"], values["shuffle"] = None, False
    sgd = values.get("optimizer") == "sgd"
    if not sgd:
        values["momentum"] = 0.0
    values["nesterov"] = bool(values.get("nesterov")) and sgd and bool(values.get("momentum"))
    if values.get("init") != "normal":
        values.pop("init_std", None)
    return values
