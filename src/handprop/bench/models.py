"""The networks: a handprop Linear/ReLU stack, the ``--model cnn`` network, and their PyTorch
twins with the same weights."""
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


def copy_model(model):
    import copy
    return copy.deepcopy(model)


def handprop_cnn(seed: int = 0):
    """``handprop train --model cnn``'s network for MNIST (1 x 28 x 28 in, 10 classes), built and
    initialised by :mod:`handprop.train.build` from a TrainConfig, so the bench follows any change
    made there; the weights drawn from ``seed``."""
    import numpy as np

    from ..serialize import build_model
    from ..train import build
    from ..train.config import TrainConfig
    cfg = TrainConfig.create(model="cnn", seed=seed)
    model = build_model(build.model_spec(1, 10, cfg))
    build.initialise(model, cfg, np.random.default_rng(seed))
    return model


def torch_twin(model):
    """Any exportable handprop model in PyTorch, as a user gets it: the printed definition of
    :func:`handprop.interop.torch_definition` (our own text, evaluated with torch alone in
    scope) holding the weights of :func:`handprop.interop.to_torch_state`, loaded strictly;
    in ``model``'s float dtype and train/eval mode."""
    import numpy as np
    import torch

    from ..interop import to_torch_state, torch_definition
    module = eval(torch_definition(model), {"__builtins__": {}, "torch": torch})  # noqa: S307
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in to_torch_state(model).items()}
    module.load_state_dict(state, strict=True)  # copies into the module's float32 parameters
    dtype = torch.from_numpy(np.empty(0, model.parameters()[0].dtype)).dtype
    return module.to(dtype).train(model.training)
