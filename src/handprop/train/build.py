"""What a :class:`TrainConfig` builds: the layer list, the initial weights, the loss, the
optimiser and the targets the loss expects."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn, optim
from ..nn import init as _init
from ..nn.linear import INITS
from .config import TrainConfig

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}


def effective_lr(cfg: TrainConfig, n_train: int) -> float:
    """The learning rate, resolving the EPFL form ``"<eta>/N"`` (per-sample rate over N samples)."""
    if isinstance(cfg.lr, str):
        return float(cfg.lr.removesuffix("/N")) / n_train
    return float(cfg.lr)


#: The channels of ``--model cnn``'s convolutions (3x3, stride 2 but the first: 28 -> 28, 14, 7, 4, 2).
CNN_CHANNELS = (16, 32, 64, 128, 256)

#: The channels of ``--model resnet``'s ResBlocks (stride 2 but the first: 28 -> 28, 14, 7, 4, 2).
RESNET_CHANNELS = (8, 16, 32, 64, 128, 256)


def model_spec(n_in: int, n_out: int, cfg: TrainConfig) -> list[dict[str, Any]]:
    """The layer list of ``cfg.model`` taking ``n_in`` features (mlp) or image channels (cnn, resnet)
    and scoring ``n_out`` classes."""
    if cfg.model == "mlp":
        return _mlp_spec(n_in, n_out, cfg)
    act = _activation_config(cfg.activation)
    channels = [n_in, *(CNN_CHANNELS if cfg.model == "cnn" else RESNET_CHANNELS)]
    spec: list[dict[str, Any]] = []
    for i, (a, b) in enumerate(zip(channels[:-1], channels[1:])):
        stride = 1 if i == 0 else 2
        if cfg.model == "cnn":
            spec += [{"type": "Conv2d", "in_channels": a, "out_channels": b, "kernel_size": 3, "stride": stride,
                      "padding": 1, "bias": False}, {"type": "BatchNorm2d", "num_features": b}, act]
        else:
            spec.append({"type": "ResBlock", "ni": a, "nf": b, "stride": stride, "act": cfg.activation})
    return spec + [{"type": "AdaptiveAvgPool2d", "output_size": 1}, {"type": "Flatten"},
                   {"type": "Linear", "in_features": channels[-1], "out_features": n_out}]


def _mlp_spec(n_in: int, n_out: int, cfg: TrainConfig) -> list[dict[str, Any]]:
    """The layer list of an MLP: Linear + activation per hidden size, a Linear out (+ optional activation)."""
    sizes = [n_in, *cfg.hidden, n_out]
    spec: list[dict[str, Any]] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        spec.append({"type": "Linear", "in_features": a, "out_features": b})
        if i < len(sizes) - 2:
            spec.append(_activation_config(cfg.activation))
    if cfg.output_activation:
        spec.append(_activation_config(cfg.output_activation))
    return spec


def _activation_config(name: str) -> dict[str, Any]:
    entry = nn.registry.activations()[name]
    return {"type": entry.name, **entry.activation.kwargs}


def initialise(model: nn.Module, cfg: TrainConfig, rng: np.random.Generator) -> None:
    """Draw every Linear's and Conv2d's weights with the configured init (gain from the activation);
    ``lsuv`` starts from kaiming_normal and is finished by :func:`handprop.nn.init.lsuv_` on a data batch."""
    nonlinearity = nn.registry.activations()[cfg.activation].activation.gain
    std = cfg.init_std
    normal = lambda w, b, r: (_init.normal_(w, std=std, rng=r),  # noqa: E731
                              b is not None and _init.normal_(b, std=std, rng=r))
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            layer.reset_parameters(normal if cfg.init == "normal" else _drawn(cfg.init), nonlinearity, rng=rng)
        elif isinstance(layer, nn.Conv2d):
            bias = layer.bias.data if layer.bias is not None else None
            if cfg.init == "default":
                layer.reset_parameters(rng)
            elif cfg.init == "normal":
                normal(layer.weight.data, bias, rng)
            else:
                INITS[_drawn(cfg.init)](layer.weight.data, nonlinearity, rng)
                if bias is not None:
                    _init.zeros_(bias)


def _drawn(init: str) -> str:
    """The init that draws the weights: LSUV starts from kaiming_normal and rescales afterwards."""
    return "kaiming_normal" if init == "lsuv" else init


def build_optimizer(cfg: TrainConfig, params: list, lr: float) -> optim.Optimizer:
    """The configured optimiser over ``params`` (the config allows momentum and Nesterov with SGD only)."""
    if cfg.optimizer == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    return OPTIMIZERS[cfg.optimizer](params, lr=lr, weight_decay=cfg.weight_decay)


def build_loss(cfg: TrainConfig) -> nn.Loss:
    return nn.registry.losses()[cfg.loss].cls(reduction=cfg.reduction)


def encode_targets(y: np.ndarray, num_classes: int, cfg: TrainConfig) -> np.ndarray:
    """Integer labels for cross-entropy; one-hot rows (``target_on``/``target_off``) for MSE."""
    if cfg.loss == "mse":
        return nn.functional.one_hot(y, num_classes, on=cfg.target_on, off=cfg.target_off)
    return y.astype(np.int64, copy=False)
