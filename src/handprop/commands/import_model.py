"""``handprop import TORCH.safetensors [--arch ...] OUT``: a PyTorch model's weights as a handprop model."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "build a handprop model from PyTorch weights (.safetensors) and save it (.npz or .safetensors)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", type=Path, metavar="TORCH.safetensors",
                        help="a PyTorch state dict saved with safetensors (never a pickled .pt)")
    parser.add_argument("out", type=Path, metavar="OUT", help="the handprop model file to write (.npz or .safetensors)")
    parser.add_argument("--arch", metavar="DEFINITION", help="the architecture: PyTorch code "
                        "(\"torch.nn.Sequential(torch.nn.Linear(784, 256), ...)\"), what print(model) shows, or a "
                        "handprop layer config (JSON); not needed for files written by handprop export")


def run(args: argparse.Namespace) -> int:
    from ..interop.cli import import_

    return import_(args.weights, args.arch, args.out)
