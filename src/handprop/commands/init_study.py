"""``handprop init-study [--depth 50]``: the notebooks' initialisation experiments on real MNIST
(see :mod:`handprop.init_study`): prints the table, writes ``init_study.png``."""
from __future__ import annotations

import argparse
from pathlib import Path


HELP = "the notebooks' init experiments: std of the activations through 50 layers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--depth", type=int, default=50, metavar="N", help="Linear + activation blocks (default 50)")
    parser.add_argument("--width", type=int, default=256, metavar="N", help="units per block (default 256)")
    parser.add_argument("--batch", type=int, default=256, metavar="N",
                        help="MNIST training images pushed through (default 256)")
    parser.add_argument("--draws", type=int, default=5, metavar="N",
                        help="networks drawn per init, their activations pooled (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights (default 0)")
    parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                        help="folder for init_study.png (default: the current one)")
    parser.add_argument("--data-dir", type=Path, metavar="DIR", help="folder holding the MNIST IDX files")
    parser.add_argument("--offline", dest="download", action="store_false", help="never download MNIST")


def run(args: argparse.Namespace) -> int:
    from ..data import Normalize, load_dataset, to_float_flat
    from ..figures import have_matplotlib
    from ..init_study import init_study

    if args.batch < 2:
        raise ValueError(f"init-study: --batch must be at least 2, got {args.batch}")
    (images, _), _ = load_dataset("mnist", root=args.data_dir, download=args.download)
    pixels = Normalize().fit(images)  # the training images' statistics, in pixel units (0..255)
    normalize = Normalize(pixels.mean / 255, pixels.std / 255)
    study = init_study(normalize(to_float_flat(images[:args.batch])), args.depth, args.width, args.draws, args.seed)
    print(study.table())
    if have_matplotlib("init_study.png"):
        args.out.mkdir(parents=True, exist_ok=True)
        print(f"wrote {study.plot(args.out / 'init_study.png')}")
    return 0
