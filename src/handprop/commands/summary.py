"""``handprop summary [model flags | MODEL.npz]``: the layer table of a model (see
:mod:`handprop.summary`), from a saved file or run directory, or built from the model flags of
``handprop train`` through ``make_model(args)``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import UsageError

if TYPE_CHECKING:
    from ..nn.module import Module


HELP = "per-layer output shape, parameters and multiply-adds of a model, with totals"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", type=Path, default=None, metavar="MODEL.npz|RUN_DIR",
                        help="a saved model (.npz or .safetensors) or a run directory; "
                             "without it, the model the train flags describe")
    parser.add_argument("--input-shape", type=_shape, default=None, metavar="D[,D...]",
                        help="one sample's shape, e.g. 1,28,28 (default: the first Linear's in_features)")


def run(args: argparse.Namespace, make_model: Callable[[argparse.Namespace], Module] | None = None) -> int:
    from ..evaluate import resolve_model_path
    from ..saving import load
    from ..summary import summary

    if args.model is not None:
        path = resolve_model_path(args.model)
        model, where = load(path), str(path)
    elif make_model is not None:
        model, where = make_model(args), "the model of the train flags"
    else:
        raise UsageError("summary: give a MODEL.npz or a run directory")
    print(f"{where}:")
    print(summary(model, args.input_shape or _first_in_features(model)))
    return 0


def _shape(text: str) -> tuple[int, ...]:
    """argparse type: ``"1,28,28"`` -> (1, 28, 28), every entry a positive integer."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return shape


def _first_in_features(model: Module) -> tuple[int, ...]:
    for layer in model.modules():
        if next(layer.named_children(), None) is None:  # the first layer that computes
            if hasattr(layer, "in_features"):
                return (layer.in_features,)
            raise UsageError(f"summary: cannot infer the input shape of a model starting with "
                             f"{type(layer).__name__}; pass --input-shape")
    raise UsageError("summary: the model has no layers")
