"""Layers, losses and initialisers with hand-written backward passes."""
from . import functional, init
from .activation import GeneralReLU, LeakyReLU, ReLU, Sigmoid, Tanh
from .linear import Linear
from .loss import CrossEntropyLoss, LogSoftmax, Loss, MSELoss, NLLLoss
from .module import Module, Parameter, Sequential

__all__ = [
    "Parameter", "Module", "Sequential", "Linear",
    "ReLU", "LeakyReLU", "GeneralReLU", "Tanh", "Sigmoid",
    "Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "LogSoftmax",
    "functional", "init",
]
