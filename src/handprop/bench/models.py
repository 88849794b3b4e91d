"""The networks: a handprop Linear/ReLU stack and its PyTorch twin with the same weights."""
from __future__ import annotations

from itertools import pairwise


def handprop_mlp(sizes: tuple[int, ...], seed: int = 0):
    """Linear/ReLU stack with PyTorch's default init, drawn from ``seed``."""
    from .. import nn
    layers = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(a, b, rng=seed + i))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def torch_mlp(model):
    """The same network in PyTorch, with a copy of handprop's weights (torch weight = W.T)."""
    import torch

    from .. import nn
    layers = []
    for layer in model:
        if isinstance(layer, nn.Linear):
            lin = torch.nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.weight.data.T.copy()))
                lin.bias.copy_(torch.from_numpy(layer.bias.data.copy()))
            layers.append(lin)
        else:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def copy_model(model):
    import copy
    return copy.deepcopy(model)
