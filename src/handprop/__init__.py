"""handprop: deep learning from the foundations, with every backward pass written by hand.

``import handprop`` needs only NumPy; progress bars and plots load their libraries on use.
"""
from . import nn, optim
from ._random import manual_seed
from .errors import UsageError
from .gradcheck import GradcheckError, assert_close, assert_near_zero, gradcheck

__version__ = "0.1.0"

__all__ = ["nn", "optim", "manual_seed", "gradcheck", "GradcheckError", "assert_close",
           "assert_near_zero", "UsageError", "Tensor", "no_grad", "save", "load", "set_num_threads",
           "get_num_threads", "__version__"]


def __getattr__(name: str):
    """``handprop.Tensor`` / ``no_grad`` / ``save`` / ``load`` / ``set_num_threads`` / ``data``... load their
    module on first use."""
    if name in ("Tensor", "no_grad"):
        from . import autograd
        return getattr(autograd, name)
    if name in ("save", "load"):
        from . import saving
        return getattr(saving, name)
    if name in ("set_num_threads", "get_num_threads"):
        from . import threads
        return getattr(threads, name)
    if name in ("data", "train", "autograd"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'handprop' has no attribute {name!r}")
