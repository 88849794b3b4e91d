"""``handprop lr-find [train flags]``: the learning-rate range test on the training setup.

The model, data and optimiser come from the train flags through ``make_learner(args)`` (the
CLI passes the builder of ``handprop train``); this module adds the sweep's own flags, runs
:meth:`Learner.lr_find`, prints both suggestions and writes ``lr_find.png``.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..train.learner import Learner


HELP = "learning-rate range test: suggested rates and lr_find.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start-lr", type=float, default=1e-7, metavar="LR", help="first rate (default 1e-7)")
    parser.add_argument("--end-lr", type=float, default=10.0, metavar="LR", help="last rate (default 10)")
    parser.add_argument("--num-it", type=int, default=100, metavar="N", help="batches at most (default 100)")
    parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                        help="folder for lr_find.png (default: the current one)")


def run(args: argparse.Namespace, make_learner: Callable[[argparse.Namespace], Learner]) -> int:
    from ..figures import have_matplotlib

    result = make_learner(args).lr_find(args.start_lr, args.end_lr, args.num_it)
    print(f"swept {len(result.lrs)} batches from lr {result.lrs[0]:.2g} to {result.lrs[-1]:.2g} "
          f"({result.stop_reason})")
    print(f"suggested learning rate: {result.steepest:.2g} (steepest descent); "
          f"valley: {result.valley:.2g}")
    if have_matplotlib("lr_find.png"):
        args.out.mkdir(parents=True, exist_ok=True)
        print(f"wrote {result.plot(args.out / 'lr_find.png')}")
    return 0
