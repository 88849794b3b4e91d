"""Does ``lr_find`` point at a learning rate that trains well? The default MLP (784-256-10 ReLU,
kaiming_normal, AdamW with weight decay 0.01, batch 64, normalised MNIST, 50,000 train /
10,000 validation) is swept with the learning-rate finder, then trained for a short run at
each rate of a grid, at that constant rate (what the finder measures) or with the default
one-cycle schedule peaking at it; the best validation loss names the winner, and the
suggestions are compared with it.

    HANDPROP_DATA=../shared/data python benchmarks/lr_sweep.py [--epochs 1] [--seeds 0 1]
        [--schedule constant|onecycle]
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

from handprop import nn, optim
from handprop.data import ArrayDataset, DataLoader, Normalize, mnist, to_float_flat, train_valid_split
from handprop.optim.lr_scheduler import one_cycle
from handprop.train import LRSchedule, Learner, Recorder

GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


def data():
    (x, y), _ = mnist(download=False)
    (x_tr, y_tr), (x_va, y_va) = train_valid_split(to_float_flat(x), y.astype(np.int64), 10_000)
    norm = Normalize().fit(x_tr)
    return (norm(x_tr), y_tr), (norm(x_va), y_va)


def learner(train, valid, lr: float, seed: int, callbacks=()) -> Learner:
    model = nn.Sequential(nn.Linear(784, 256, init="kaiming_normal", rng=seed), nn.ReLU(),
                          nn.Linear(256, 10, init="kaiming_normal", rng=seed + 1))
    return Learner(model, nn.CrossEntropyLoss(), optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01),
                   DataLoader(ArrayDataset(*train), 64, shuffle=True, rng=seed),
                   DataLoader(ArrayDataset(*valid), 1000), [Recorder(), *callbacks])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--schedule", choices=["constant", "onecycle"], default="constant")
    args = parser.parse_args()
    train, valid = data()
    valleys, steeps = [], []
    for seed in args.seeds:
        result = learner(train, valid, 1e-3, seed).lr_find()
        valleys.append(result.valley)
        steeps.append(result.steepest)
        print(f"seed {seed}: lr_find valley {result.valley:.2g}, steepest {result.steepest:.2g} "
              f"({len(result.lrs)} batches, {result.stop_reason})", flush=True)
    losses = {}
    for lr in GRID:
        runs = []
        for seed in args.seeds:
            steps = args.epochs * -(-len(train[0]) // 64)
            schedule = [LRSchedule(one_cycle(lr, steps))] if args.schedule == "onecycle" else []
            learn = learner(train, valid, lr, seed, schedule)
            learn.fit(args.epochs)
            runs.append((learn.history[-1]["valid_loss"], learn.history[-1]["valid_accuracy"]))
        losses[lr] = statistics.mean(r[0] for r in runs)
        print(f"lr {lr:g} ({args.schedule}): valid loss {losses[lr]:.4f}, accuracy "
              f"{statistics.mean(r[1] for r in runs):.2%} (mean of {len(runs)} seeds)", flush=True)
    best = min(losses, key=losses.get)
    for name, values in (("valley", valleys), ("steepest", steeps)):
        suggested = statistics.geometric_mean(values)
        print(f"{name}: {suggested:.2g} is {max(best / suggested, suggested / best):.1f}x from the best "
              f"rate {best:g}")


if __name__ == "__main__":
    main()
