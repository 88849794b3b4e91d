"""Layers, losses and initialisers with hand-written backward passes.

Every layer and loss type is registered (see :mod:`handprop.nn.registry`) beside its class.
"""
from . import functional, init, registry
from .activation import GELU, GeneralReLU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .dropout import Dropout
from .flatten import Flatten
from .layernorm import LayerNorm
from .linear import Linear
from .loss import CrossEntropyLoss, Loss, MSELoss, NLLLoss
from .module import Module, Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .resblock import ResBlock
from .sequential import Sequential

__all__ = [
    "Parameter", "Module", "Sequential", "Linear",
    "Conv2d", "ResBlock", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout",
    "ReLU", "LeakyReLU", "GeneralReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "LogSoftmax",
    "Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss",
    "functional", "init", "registry",
]
