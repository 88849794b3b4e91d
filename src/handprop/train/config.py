"""What a training run is made of: defaults, the notebooks' recipes, and the builders that turn
a config dict into data, model, loss and optimiser."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn, optim
from ..nn import init as _init

#: The plain ``handprop train``: a 784-256-10 ReLU MLP, AdamW with a one-cycle schedule, 5 epochs
#: of batch 64 on normalised MNIST (about 98% test accuracy in a few seconds).
DEFAULTS: dict[str, Any] = {
    "dataset": "mnist", "data_dir": None, "download": True,
    "hidden": [256], "activation": "relu", "output_activation": None,
    "loss": "ce", "reduction": "mean", "target_on": 1.0, "target_off": 0.0,
    "init": "kaiming_normal", "init_std": 0.01,
    "optimizer": "adamw", "lr": None, "momentum": 0.0, "nesterov": False, "weight_decay": None,
    "schedule": "onecycle", "batch_size": 64, "full_batch": False, "shuffle": True, "epochs": 5,
    "subset": None, "test_subset": None, "valid": 10000, "normalize": True,
    "seed": 0, "patience": None, "log_every": 1, "metric": "accuracy",
}

#: Per-optimiser defaults, used where neither the recipe nor a flag sets a value.
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.1, "weight_decay": 0.0},
    "adam": {"lr": 3e-3, "weight_decay": 0.0},
    "adamw": {"lr": 3e-3, "weight_decay": 0.01},
}

#: The notebooks' experiments; explicit command-line flags override them.
RECIPES: dict[str, dict[str, Any]] = {
    # fast.ai lesson 9's training loop: raw [0, 1] pixels (no normalisation), plain SGD, 1 epoch,
    # batches in the dataset's order as in the notebook.
    "fastai": {"hidden": [50], "activation": "relu", "loss": "ce", "init": "default",
               "optimizer": "sgd", "lr": 0.5, "momentum": 0.0, "nesterov": False, "schedule": "none",
               "batch_size": 64, "epochs": 1, "normalize": False, "shuffle": False},
    # EPFL deep-learning practical 3: tanh MLP, summed MSE against 0.9-scaled {-1, +1} one-hot
    # targets, N(0, 1e-6) init, full-batch gradient descent with lr 0.1/N for 1,000 steps on the
    # first 1,000 training and test images; the test set is evaluated at every step.
    "epfl": {"hidden": [50], "activation": "tanh", "output_activation": "tanh",
             "loss": "mse", "reduction": "sum", "target_on": 0.9, "target_off": -0.9,
             "init": "normal", "init_std": 1e-6, "optimizer": "sgd", "lr": "0.1/N", "momentum": 0.0,
             "nesterov": False, "schedule": "none", "full_batch": True, "epochs": 1000,
             "subset": 1000, "test_subset": 1000, "valid": 0, "log_every": 100, "metric": "error"},
}

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}


def resolve(recipe: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """DEFAULTS, then the recipe, then every override that is not None; then the chosen
    optimiser's defaults fill what is still unset (lr, weight decay), and full-batch runs
    log every tenth of their steps unless told otherwise."""
    if recipe is not None and recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    cfg = {**DEFAULTS, **(RECIPES[recipe] if recipe else {}), "recipe": recipe}
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    for key, value in OPTIMIZER_DEFAULTS[cfg["optimizer"]].items():
        if cfg[key] is None:
            cfg[key] = value
    if cfg["full_batch"] and overrides.get("log_every") is None and "log_every" not in RECIPES.get(recipe, {}):
        # one step per epoch: log (and checkpoint) about ten times, not at every step
        cfg["log_every"] = max(1, cfg["epochs"] // 10)
    return cfg


def effective_lr(cfg: dict[str, Any], n_train: int) -> float:
    """The learning rate, resolving the EPFL form ``"<eta>/N"`` (per-sample rate over N samples)."""
    lr = cfg["lr"]
    if isinstance(lr, str):
        return float(lr.removesuffix("/N")) / n_train
    return float(lr)


def model_spec(n_in: int, n_out: int, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The layer list of an MLP: Linear + activation per hidden size, a Linear out (+ optional activation)."""
    sizes = [n_in, *cfg["hidden"], n_out]
    spec: list[dict[str, Any]] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        spec.append({"type": "Linear", "in_features": a, "out_features": b})
        if i < len(sizes) - 2:
            spec.append(_activation_config(cfg["activation"]))
    if cfg.get("output_activation"):
        spec.append(_activation_config(cfg["output_activation"]))
    return spec


def _activation_config(name: str) -> dict[str, Any]:
    entry = nn.registry.activations()[name]
    return {"type": entry.name, **entry.activation.kwargs}


def initialise(model: nn.Module, cfg: dict[str, Any], rng: np.random.Generator) -> None:
    """Draw every Linear's weights with the configured init (gain from the activation)."""
    name, nonlinearity = cfg["init"], nn.registry.activations()[cfg["activation"]].activation.gain
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            if name == "normal":
                std = cfg["init_std"]
                layer.reset_parameters(lambda w, b, r: (_init.normal_(w, std=std, rng=r),
                                                        b is not None and _init.normal_(b, std=std, rng=r)), rng=rng)
            else:
                layer.reset_parameters(name, nonlinearity, rng=rng)


def build_optimizer(cfg: dict[str, Any], params: list, lr: float) -> optim.Optimizer:
    """The configured optimiser over ``params``."""
    kind = cfg["optimizer"]
    if kind == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg["momentum"], nesterov=cfg["nesterov"] and cfg["momentum"] > 0,
                         weight_decay=cfg["weight_decay"])
    return OPTIMIZERS[kind](params, lr=lr, weight_decay=cfg["weight_decay"])


def build_loss(cfg: dict[str, Any]) -> nn.Loss:
    return nn.registry.losses()[cfg["loss"]].cls(reduction=cfg["reduction"])


def encode_targets(y: np.ndarray, num_classes: int, cfg: dict[str, Any]) -> np.ndarray:
    """Integer labels for cross-entropy; one-hot rows (``target_on``/``target_off``) for MSE."""
    if cfg["loss"] == "mse":
        return nn.functional.one_hot(y, num_classes, on=cfg["target_on"], off=cfg["target_off"])
    return y.astype(np.int64, copy=False)
