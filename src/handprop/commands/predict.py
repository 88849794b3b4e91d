"""``handprop predict MODEL IMAGE...``: the top-3 classes of each picture (or ``.npy`` batch row).

``add_arguments(parser)`` declares the flags on the subcommand's parser and ``run(args)``
runs it, returning the exit status; user errors are ValueErrors naming the file or flag.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..predict import Prediction

HELP = "the top-3 classes of pictures of digits (PNG/JPEG) or .npy batches, by a trained model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="a model file (.npz, .safetensors) or a run directory")
    parser.add_argument("inputs", type=Path, nargs="+", metavar="IMAGE",
                        help="PNG/JPEG pictures of digits (any size, dark on light or light on dark), or .npy "
                        "batches of 28x28 MNIST-format images: (N, 28, 28) or (N, 784), uint8 0..255 or float 0..1")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a line per input")
    parser.add_argument("--show", type=Path, metavar="DIR",
                        help="write the 28x28 image the model saw for each input to DIR (as <name>.28x28.png)")


def run(args: argparse.Namespace) -> int:
    from ..evaluate import resolve_model_path
    from ..predict import load_inputs, predict
    from ..saving import load

    model, normalize, meta = load(resolve_model_path(args.model), with_meta=True)
    names, images = load_inputs(args.inputs)
    predictions = predict(model, normalize, images, names, meta.get("classes"))
    shown = _show(predictions, args.show, args.inputs) if args.show is not None else [None] * len(predictions)
    if args.json:
        print(json.dumps([_record(p, s) for p, s in zip(predictions, shown)], indent=2))
        return 0
    for p, s in zip(predictions, shown):
        top = ", ".join(f"{name} ({prob:.1%})" for name, prob in zip(p.names, p.probabilities))
        print(f"{p.source}: {top}" + (f"   [saw {s}]" if s else ""))
    return 0


def _record(p: Prediction, shown: Path | None) -> dict:
    record = {"input": p.source, "top": [{"class": c, "name": n, "probability": prob}
                                         for c, n, prob in zip(p.classes, p.names, p.probabilities)]}
    return {**record, "shown": str(shown)} if shown is not None else record


def _show(predictions: list[Prediction], folder: Path, inputs: list[Path]) -> list[Path]:
    """Write each prediction's 28x28 image into ``folder``, never over an input or each other."""
    from ..data.images import save_png

    folder.mkdir(parents=True, exist_ok=True)
    taken = {path.resolve() for path in inputs}
    written = []
    for p in predictions:
        name = Path(p.source).name
        stem = re.sub(r"\.npy\[(\d+)\]$", r"-\1", name, flags=re.IGNORECASE)  # batch.npy[3] -> batch-3
        stem = Path(stem).stem if stem == name else stem
        path, i = folder / f"{stem}.28x28.png", 1
        while path.resolve() in taken:
            path, i = folder / f"{stem}-{i}.28x28.png", i + 1
        taken.add(path.resolve())
        written.append(save_png(p.image, path))
    return written
