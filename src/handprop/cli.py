"""The ``handprop`` command: train | evaluate | gradcheck | bench | info.

Subcommands import their machinery on use, so ``handprop --help`` stays fast. User errors
(bad flags, missing data, unwritable paths, a run directory in use) print one line to stderr and
exit with status 2; a run stopped by a signal exits with 128 + its number (Ctrl-C 130, SIGTERM 143).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

EXIT_USAGE, EXIT_FAILED = 2, 1


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``handprop train: error: ...``) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _number(kind: type, low: float, inclusive: bool = True, what: str = ""):
    """An argparse type: a ``kind`` number >= low (or > low)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__ if kind is int else 'a number'}, got {text!r}")
        if not (value >= low if inclusive else value > low) or value != value:
            raise argparse.ArgumentTypeError(f"must be {'>=' if inclusive else '>'} {low}{what}, got {text}")
        return value
    return parse


def directory(text: str) -> Path:
    """An argparse type: a directory path; an empty name (``--out ''``) is refused, not taken as '.'."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a directory name, got {text!r}")
    return Path(text)


positive_int = _number(int, 0, inclusive=False)
positive_float = _number(float, 0.0, inclusive=False)
nonneg_float = _number(float, 0.0)
nonneg_int = _number(int, 0)


def _add_data_args(p: argparse.ArgumentParser, dataset_default: str | None) -> None:
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default=dataset_default,
                   help="which dataset (default: mnist)")
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="folder holding the four IDX files (searched first; downloads go there)")
    p.add_argument("--offline", dest="download", action="store_false", default=None,
                   help="never download; fail if no local copy is found")


def build_parser() -> argparse.ArgumentParser:
    from .nn import registry  # (nn is imported by `import handprop` anyway)

    parser = _Parser(prog="handprop", description="Deep learning from the foundations: NumPy MLPs with "
                     "hand-written backward passes, proven against finite differences, autograd and PyTorch.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train an MLP on MNIST or Fashion-MNIST and report test accuracy",
                       description="Train an MLP and write a run directory (model.npz, metrics.json, "
                       "metrics.csv, curves.png, confusion.png, checkpoints). Flags override --recipe.")
    t.add_argument("--recipe", choices=["fastai", "epfl"], help="reproduce a notebook: fastai (784-50-10 ReLU, "
                   "SGD lr 0.5, 1 epoch, raw pixels) or epfl (tanh MLP, MSE, full-batch GD, 1,000 steps)")
    _add_data_args(t, None)
    t.add_argument("--hidden", type=positive_int, action="append", metavar="N",
                   help="hidden layer width; repeat for depth (default: 256)")
    t.add_argument("--activation", choices=list(registry.activations()),
                   help="hidden-layer activation (default: relu)")
    t.add_argument("--loss", choices=list(registry.losses()), help="ce: cross-entropy on labels; "
                   "mse: MSE on one-hot targets")
    t.add_argument("--init", choices=["default", "kaiming_uniform", "kaiming_normal", "xavier_uniform",
                                      "xavier_normal", "normal"], help="weight init (default: kaiming_normal)")
    t.add_argument("--init-std", type=positive_float, metavar="STD", help="std of --init normal")
    t.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], help="default adamw (lr 3e-3, weight decay 0.01); "
                   "sgd defaults to lr 0.1")
    t.add_argument("--lr", type=positive_float, help="learning rate (peak rate with a schedule)")
    t.add_argument("--momentum", type=nonneg_float)
    t.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--weight-decay", type=nonneg_float)
    t.add_argument("--batch-size", type=positive_int)
    t.add_argument("--full-batch", action="store_true", default=None, help="full-batch gradient descent")
    t.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None,
                   help="reshuffle the training set every epoch (default: yes; the fastai recipe: no)")
    t.add_argument("--epochs", type=positive_int, help="epochs (steps with --full-batch)")
    t.add_argument("--schedule", choices=["none", "onecycle", "cosine"], help="learning-rate schedule")
    t.add_argument("--subset", type=positive_int, metavar="N", help="train on the first N training images")
    t.add_argument("--valid", type=nonneg_int, metavar="N",
                   help="validation images split off the end of the training set (default 10000; 0: none)")
    t.add_argument("--no-normalize", dest="normalize", action="store_false", default=None,
                   help="keep raw [0, 1] pixels")
    t.add_argument("--full", action="store_true", help="epfl recipe: use all images instead of 1,000")
    t.add_argument("--patience", type=positive_int, metavar="N", help="early stopping after N epochs without "
                   "improvement of the validation loss (needs --valid > 0); model.npz then holds the best epoch's "
                   "weights")
    t.add_argument("--log-every", type=positive_int, metavar="N", help="print every N epochs/steps")
    t.add_argument("--seed", type=nonneg_int, help="seed of the initial weights and the batch order (default 0)")
    t.add_argument("--out", type=directory, metavar="DIR", help="run directory, new or empty "
                   "(default: a new runs/<timestamp>-<n>)")
    t.add_argument("--overwrite", action="store_true", help="let --out name a directory holding a run: its "
                   "run files are removed first")
    t.add_argument("--resume", type=directory, metavar="RUN_DIR", help="continue an interrupted run from its "
                   "last.npz (or extend a finished one with --epochs)")
    t.add_argument("--threads", type=positive_int, metavar="N", help="threads for NumPy's BLAS (needs threadpoolctl); "
                   "a resume is bit-identical only with the same count")
    t.add_argument("--quiet", action="store_true", help="print only the final summary")

    e = sub.add_parser("evaluate", help="test metrics and confusion matrix of a saved model",
                       description="Evaluate model.npz (or a run directory) on the test set.")
    e.add_argument("model", type=Path, metavar="MODEL.npz|RUN_DIR")
    _add_data_args(e, None)

    g = sub.add_parser("gradcheck", help="prove every layer's gradient: hand-written vs finite differences "
                       "vs autograd vs PyTorch", description="Check every built-in layer and loss in float64.")
    g.add_argument("--seed", type=int, default=0)

    b = sub.add_parser("bench", help="time handprop against PyTorch, side by side",
                       description="Benchmarks: handprop vs PyTorch in one process, alternating runs.")
    from_bench = _bench_arguments()
    if from_bench:
        from_bench(b)

    i = sub.add_parser("info", help="versions, BLAS, threads, and where the datasets were found")
    i.add_argument("--data-dir", type=Path, metavar="DIR", help="show the search train/evaluate --data-dir DIR make")
    return parser


def _version() -> str:
    from . import __version__
    return f"handprop {__version__}"


def _bench_arguments():
    try:
        from .bench import add_arguments
    except ImportError:
        return None
    return add_arguments


def cmd_train(args: argparse.Namespace) -> int:
    from .train import config as C
    from .train.output import reader_tolerant_output
    from .train.run import Run, TrainingInterrupted, load_resume_config
    from .train.rundir import claim_run_dir
    from .train.signals import exit_status, stop_signals_interrupt

    # str, not Path: the config is saved as JSON in metrics.json and the checkpoints.
    overrides = {k: str(v) if isinstance(v, Path) else v
                 for k in C.DEFAULTS if (v := getattr(args, k, None)) is not None}
    resume = args.resume is not None
    if resume:
        if args.out is not None and args.out != args.resume:
            raise ValueError("--resume writes into the run directory it resumes; drop --out")
        if args.recipe or args.full:
            raise ValueError("--resume continues the saved configuration; drop --recipe/--full")
        if args.overwrite:
            raise ValueError("--resume continues the run in its directory, --overwrite replaces it; drop one")
        out = args.resume
    else:
        cfg = C.resolve(args.recipe, overrides)
        if args.full:
            if args.recipe != "epfl":
                raise ValueError("--full applies to --recipe epfl only")
            cfg["subset"] = cfg["test_subset"] = None
        if args.overwrite and args.out is None:
            raise ValueError("--overwrite applies to --out DIR (the default run directory is always new)")
        out = args.out
    if args.threads:
        _set_blas_threads(args.threads)
    # Stop signals raise like Ctrl-C; the directory is ours alone; a closed stdout ends nothing.
    with stop_signals_interrupt(), \
            claim_run_dir(out, resume=resume, overwrite=args.overwrite) as out, \
            reader_tolerant_output(out):
        if resume:  # read once the run is ours: a live run there is refused first
            cfg = load_resume_config(out, overrides)
        run = Run(cfg, out, quiet=args.quiet)
        if resume:
            run.resume_from(out / "last.npz")
        if not args.quiet:
            print(run.describe(), flush=True)
        try:
            result = run.fit()
        except TrainingInterrupted as e:
            print(f"\n{e}", file=sys.stderr)
            return exit_status(e.interrupt)
        except ValueError as e:  # every user input was checked above: this is a bug, show the traceback
            raise RuntimeError(f"internal error during training: {e}") from e
        print(run.summary())
    return EXIT_FAILED if result["status"] == "diverged" else 0


def _set_blas_threads(n: int) -> None:
    from .bench.threads import set_blas_threads

    if not set_blas_threads(n):
        raise ValueError(f"--threads {n} needs threadpoolctl (pip install threadpoolctl); without it, "
                         f"start with OPENBLAS_NUM_THREADS={n} instead")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate
    return evaluate(args.model, args.dataset, args.data_dir, args.download is not False)


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from .trust import print_trust_report
    return print_trust_report(seed=args.seed)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run
    return run(args)


def cmd_info(args: argparse.Namespace) -> int:
    from .info import print_info
    return print_info(args.data_dir)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "gradcheck": cmd_gradcheck,
            "bench": cmd_bench, "info": cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except ValueError as e:  # DatasetError and every argument check are ValueErrors
        # One line, even for messages written as several (the data layer's list of remedies).
        message = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
        print(f"handprop {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as e:  # before a run could checkpoint (or outside train): nothing to resume
        from .train.signals import by_which, exit_status
        print(f"handprop {args.command}: interrupted{by_which(e)}", file=sys.stderr)
        return exit_status(e)
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except OSError as e:
        print(f"handprop {args.command}: error: {e}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
