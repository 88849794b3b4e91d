"""``handprop export MODEL --to torch|onnx OUT``: a trained model in PyTorch's or ONNX's terms."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a model's weights for PyTorch (safetensors state dict) or as an ONNX graph"
#: What ``--to`` takes.
TARGETS = ("torch", "onnx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL", help="a model file (.npz, .safetensors) or a run directory")
    parser.add_argument("--to", required=True, choices=TARGETS,
                        help="torch: PyTorch's names and layouts in a .safetensors file, plus the torch.nn "
                        "definition that loads it; onnx: an ONNX graph (opset 17, dynamic batch axis)")
    parser.add_argument("out", type=Path, metavar="OUT", help="OUT.safetensors (--to torch) or OUT.onnx (--to onnx)")


def run(args: argparse.Namespace) -> int:
    from ..evaluate import resolve_model_path
    from ..interop.cli import export

    return export(resolve_model_path(args.model), args.to, args.out)
