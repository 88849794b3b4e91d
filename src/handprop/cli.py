"""The ``handprop`` command: train | evaluate | predict | export | import | gradcheck | bench | info.

Subcommands import their machinery on use, so ``handprop --help`` stays fast. User errors
(bad flags, missing data, unwritable paths, a run directory in use) print one line to stderr and
exit with status 2; the library names settings by their config fields, and this module names them
as flags. A run stopped by a signal exits with 128 + its number (Ctrl-C 130, SIGTERM 143).
``handprop train``'s setting flags are generated from :mod:`handprop.train.config`.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from .data.errors import DatasetError
from .errors import UsageError

if TYPE_CHECKING:
    from .train.config import TrainConfig

EXIT_USAGE, EXIT_FAILED = 2, 1


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``handprop train: error: ...``) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n" if _first_process() else None)


def _typed(setting: Any) -> Callable[[str], Any]:
    """An argparse type from a config :class:`~handprop.train.config.Setting`: the library's
    kind and range checks, reported as ``argument --flag: <problem>``."""
    def parse(text: str) -> Any:
        try:
            return setting.from_text(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def directory(text: str) -> Path:
    """An argparse type: a directory path; an empty name (``--out ''``) is refused, not taken as '.'."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a directory name, got {text!r}")
    return Path(text)


def positive_int(text: str) -> int:
    """An argparse type: an integer > 0."""
    from .train.config import Setting
    return _typed(Setting(int, low=0, above=True))(text)



def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    from .train.config import Setting
    return _typed(Setting(float, low=0, above=True))(text)


def nonneg_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    from .train.config import Setting
    return _typed(Setting(int, low=0))(text)


def nonneg_float(text: str) -> float:
    """An argparse type: a number >= 0."""
    from .train.config import Setting
    return _typed(Setting(float, low=0))(text)

def _option(name: str) -> str:
    """The flag of config field ``name``: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _add_settings(p: argparse.ArgumentParser, names: Iterable[str] | None = None, defaults: bool = True) -> None:
    """A flag per config setting (``--batch-size``) and per switch (``--full-batch``), the help
    naming the default (with ``defaults``). Each flag stores under its own option string, so
    :func:`_given_settings` sees which were given."""
    from .train.config import TrainConfig, settings

    for name, s in settings().items():
        if names is not None and name not in names:
            continue
        if s.flag:
            default = getattr(TrainConfig, name)
            shown = "" if not defaults or default is None or isinstance(default, bool) else \
                f" (default: {' '.join(map(str, default)) if s.many else default})"
            option, help_ = _option(name), s.help + shown
            if s.kind is bool:
                p.add_argument(option, dest=option, action=argparse.BooleanOptionalAction, help=help_)
            elif s.kind is str and s.allowed():
                p.add_argument(option, dest=option, choices=s.allowed(), help=help_)
            else:
                p.add_argument(option, dest=option, type=_typed(s), metavar=s.metavar or name.upper(),
                               action="append" if s.many else "store", help=help_)
        for switch in s.switches:
            p.add_argument(switch.option, dest=switch.option, action="store_const", const=switch.value,
                           help=switch.help)


def _typed_flags(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``(config field, flag)`` for each setting flag given, in field order."""
    from .train.config import settings

    given = vars(args)
    return [(name, option) for name, s in settings().items()
            for option in ([_option(name)] if s.flag else []) + [switch.option for switch in s.switches]
            if option in given]


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Config field -> value, for the setting flags given; two flags for one setting are refused."""
    values, flags = {}, {}
    for name, option in _typed_flags(args):
        if name in flags:
            raise UsageError(f"{flags[name]} and {option} conflict: give one of them")
        values[name], flags[name] = vars(args)[option], option
    return values


def _in_flags(e: UsageError, typed: dict[str, str]) -> str:
    """``e``'s message with each config field it names written as the flag that sets it: the
    one typed (``typed``: field -> flag) or ``batch_size=None`` -> ``--full-batch``,
    ``momentum=0.9`` -> ``--momentum 0.9``."""
    if not e.fields:
        return str(e)
    names = "|".join(map(re.escape, e.fields))
    pattern = rf"(?<![\w-])({names})(?:=((?:[\w+/-]|\.(?=\w))+))?(?!\w)"
    return re.sub(pattern, lambda m: _flag(m.group(1), m.group(2), typed), str(e))


def _flag(name: str, value: str | None, typed: dict[str, str]) -> str:
    """How the command line says ``name`` (``value`` None) or ``name=value``."""
    from .train.config import setting

    if value is None and name in typed:
        return typed[name]
    s = setting(name)
    for switch in s.switches:
        if (value is None and not s.flag) or value == str(switch.value):
            return switch.option
    if not s.flag:
        return name if value is None else f"{name}={value}"  # a recipe-only setting
    if value is None:
        return _option(name)
    if s.kind is bool:
        return _option(name if value == "True" else f"no_{name}")
    return f"{_option(name)} {value}"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="handprop", description="Deep learning from the foundations: NumPy MLPs with "
                     "hand-written backward passes, proven against finite differences, autograd and PyTorch.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train an MLP on MNIST or Fashion-MNIST and report test accuracy",
                       description="Train an MLP and write a run directory (model.npz, metrics.json, "
                       "metrics.csv, curves.png, confusion.png, checkpoints). Flags override --recipe.",
                       argument_default=argparse.SUPPRESS)  # only the flags given reach the config
    _add_settings(t)
    t.add_argument("--full", action="store_true", default=False,
                   help="epfl recipe: use all images instead of 1,000")
    t.add_argument("--out", type=directory, metavar="DIR", default=None, help="run directory, new or empty "
                   "(default: a new runs/<timestamp>-<n>)")
    t.add_argument("--overwrite", action="store_true", default=False, help="let --out name a directory holding "
                   "a run: its run files are removed first")
    t.add_argument("--resume", type=directory, metavar="RUN_DIR", default=None, help="continue an interrupted "
                   "run from its last.npz (or extend a finished one with --epochs)")
    t.add_argument("--threads", type=positive_int, metavar="N", default=None, help="threads for NumPy's BLAS "
                   "(default: one for small models or a busy machine, else the free CPUs); a resume is "
                   "bit-identical only with the same count")
    t.add_argument("--quiet", action="store_true", default=False, help="print only the final summary")
    t.add_argument("--distributed", action=argparse.BooleanOptionalAction, default=None,
                   help="data-parallel over the processes of an MPI job, --batch-size being the global batch "
                   "(default: when mpirun or srun started more than one process; docs/distributed.md)")

    e = sub.add_parser("evaluate", help="test metrics and confusion matrix of a saved model",
                       description="Evaluate model.npz (or a run directory) on the test set.",
                       argument_default=argparse.SUPPRESS)
    e.add_argument("model", type=Path, metavar="MODEL.npz|RUN_DIR")
    _add_settings(e, ("dataset", "data_dir", "download"), defaults=False)  # default: the model's

    g = sub.add_parser("gradcheck", help="prove every layer's gradient: hand-written vs finite differences "
                       "vs autograd vs PyTorch", description="Check every built-in layer and loss in float64.")
    g.add_argument("--seed", type=int, default=0)

    b = sub.add_parser("bench", help="time handprop against PyTorch, side by side",
                       description="Benchmarks: handprop vs PyTorch in one process, alternating runs.")
    from_bench = _bench_arguments()
    if from_bench:
        from_bench(b)

    for name, module in _command_modules().items():
        with_settings = name in WITH_TRAIN_SETTINGS
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__.splitlines()[0],
                           argument_default=argparse.SUPPRESS if with_settings else None)
        module.add_arguments(p)
        if with_settings:  # only the flags given reach the config, as for train
            _add_settings(p)

    i = sub.add_parser("info", help="versions, BLAS, threads, and where the datasets were found")
    i.add_argument("--data-dir", type=Path, metavar="DIR", help="show the search train/evaluate --data-dir DIR make")
    return parser


#: Subcommands that live in a module of their own under ``handprop.commands``: each declares
#: ``HELP``, ``add_arguments(parser)`` and ``run(args) -> exit status`` (imports on use inside ``run``).
COMMAND_MODULES = {"predict": "predict", "export": "export", "import": "import_model", "summary": "summary",
                   "lr-find": "lr_find", "init-study": "init_study"}
#: Of those, the ones that also take ``handprop train``'s setting flags (to build its model or run).
WITH_TRAIN_SETTINGS = ("summary", "lr-find")


def _command_modules() -> dict:
    import importlib
    return {name: importlib.import_module(f".commands.{module}", __package__)
            for name, module in COMMAND_MODULES.items()}


def _version() -> str:
    from . import __version__
    return f"handprop {__version__}"


def _bench_arguments():
    try:
        from .bench import add_arguments
    except ImportError:
        return None
    return add_arguments


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The :class:`~handprop.train.config.TrainConfig` of a new run: the flags given over the
    recipe's values over the defaults (``--full``: the epfl recipe on every image)."""
    from .train.config import TrainConfig

    settings = _given_settings(args)
    if getattr(args, "full", False):  # (train's flag; summary and lr-find have no --full)
        if settings.get("recipe") != "epfl":
            raise UsageError("--full applies to --recipe epfl only")
        if "subset" in settings:
            raise UsageError("--full and --subset conflict: give one of them")
        settings.update(subset=None, test_subset=None)
    return TrainConfig.create(**settings)


def cmd_train(args: argparse.Namespace) -> int:
    from .distributed import connect, on_every_process, stopping_together
    from .train.output import reader_tolerant_output
    from .train.run import Run, TrainingInterrupted
    from .train.signals import exit_status, stop_signals_interrupt

    resume = args.resume is not None
    if resume:
        if args.out is not None and args.out != args.resume:
            raise UsageError("--resume writes into the run directory it resumes; drop --out")
        if args.full:
            raise UsageError("--resume continues the saved configuration; drop --full")
        if args.overwrite:
            raise UsageError("--resume continues the run in its directory, --overwrite replaces it; drop one")
        overrides = _given_settings(args)
    else:
        config = train_config(args)
        if args.overwrite and args.out is None:
            raise UsageError("--overwrite applies to --out DIR (the default run directory is always new)")
    comm = connect(args.distributed)  # None unless data-parallel (mpi4py is imported only then)
    root = comm is None or comm.is_root
    # Single process: stop signals raise like Ctrl-C. Data-parallel: they are noted and every
    # process stops at the same step; an error on one process ends the job. The directory is
    # ours alone (rank 0's); a closed stdout ends nothing; the other ranks print nothing.
    with (stopping_together(comm) if comm else stop_signals_interrupt()) as stop, \
            _claimed_run_dir(args.resume if resume else args.out, resume, args.overwrite, comm) as out, \
            (reader_tolerant_output(out) if root else _silenced_stdout()):
        # (a resume reads its checkpoint once the directory is ours: a live run there is refused first)
        parallel = {"comm": comm, "stop": stop}

        def start() -> Run:
            if resume:
                return Run.resume(out, overrides, quiet=args.quiet, threads=args.threads, **parallel)
            return Run.create(config, out, quiet=args.quiet, threads=args.threads, **parallel)
        # (data-parallel: a bad setting or missing data, the same on every process, is reported once)
        run = on_every_process(comm, start) if comm else start()
        if not args.quiet and root:
            print(run.describe(), flush=True)
            print(run.thread_choice, flush=True)
        try:
            result = run.fit()
        except TrainingInterrupted as e:
            if root:
                print(f"\n{e}", file=sys.stderr, flush=True)
            return exit_status(e.interrupt)
        except ValueError as e:  # every user input was checked above: this is a bug, show the traceback
            raise RuntimeError(f"internal error during training: {e}") from e
        if root:
            print(run.summary())
    return EXIT_FAILED if result["status"] == "diverged" else 0


@contextlib.contextmanager
def _silenced_stdout() -> Iterator[None]:
    """Within: stdout goes nowhere (the ranks but 0 of a data-parallel job; errors still reach stderr)."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


@contextlib.contextmanager
def _claimed_run_dir(out: Path | None, resume: bool, overwrite: bool, comm: Any) -> Iterator[Path]:
    """The run directory, claimed by this process, or by rank 0 of a data-parallel job (which
    tells the others its name, a default ``runs/<timestamp>-<n>`` being made there, or why it
    could not claim it: then every process raises that UsageError and rank 0 reports it)."""
    from .distributed import raised_everywhere
    from .train.rundir import claim_run_dir

    refused = "\0"  # (no path holds a NUL byte)
    if comm is not None and not comm.is_root:
        name = comm.broadcast_text(None)
        if name.startswith(refused):
            raise raised_everywhere(UsageError(name.removeprefix(refused)))
        yield Path(name)
        return
    with contextlib.ExitStack() as stack:
        try:
            claimed = stack.enter_context(claim_run_dir(out, resume=resume, overwrite=overwrite))
        except UsageError as e:
            if comm is None:
                raise
            comm.broadcast_text(refused + str(e))
            raise raised_everywhere(e) from None
        if comm is not None:
            comm.broadcast_text(str(claimed))
        yield claimed


def _model_of_settings(args: argparse.Namespace):
    """The initialised model ``handprop train`` would build from the same flags (no data needed)."""
    import numpy as np

    from .data.datasets import DATASETS
    from .serialize import build_model
    from .train import build

    config = train_config(args)
    model = build_model(build.model_spec(28 * 28, len(DATASETS[config.dataset].classes), config))
    build.initialise(model, config, np.random.default_rng(config.seed))
    return model


def _learner_of_settings(args: argparse.Namespace):
    """The Learner of the run ``handprop train`` would start from the same flags; its run
    directory is a temporary one (a sweep writes no run)."""
    import tempfile

    from .train.run import Run

    return Run.create(train_config(args), Path(tempfile.mkdtemp(prefix="handprop-lr-find-")), quiet=True).learn


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate
    data = _given_settings(args)
    return evaluate(args.model, data.get("dataset"), data.get("data_dir"), data.get("download", True))


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
    """Run ``handprop``. A user error (:class:`UsageError`, :class:`DatasetError`) is one line
    and exit 2, an OSError one line and exit 1; anything else is a bug: its traceback, exit 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command in COMMAND_MODULES:
            module = _command_modules()[args.command]
            if args.command == "summary":
                return module.run(args, _model_of_settings)
            if args.command == "lr-find":
                return module.run(args, _learner_of_settings)
            return module.run(args)
        return COMMANDS[args.command](args)
    except (UsageError, DatasetError) as e:
        message = _in_flags(e, dict(_typed_flags(args))) if isinstance(e, UsageError) else str(e)
        # One line, even for messages written as several (the data layer's list of remedies).
        message = " ".join(part.strip() for part in message.splitlines() if part.strip())
        if _first_process():  # every process of an MPI job raised it: one says so
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
    except Exception as e:  # noqa: BLE001 - not the user's doing (but see DistributedError): say so, and how to fix it
        from .distributed.errors import DistributedError
        if isinstance(e, DistributedError):  # the processes of a data-parallel run disagree (each raised it)
            if _first_process():
                print(f"handprop {args.command}: error: {e}", file=sys.stderr)
            return EXIT_FAILED
        traceback.print_exc()
        print(f"handprop {args.command}: internal error (a bug in handprop; please report it with the "
              "traceback above)", file=sys.stderr)
        return EXIT_FAILED


def _first_process() -> bool:
    """Rank 0 of an MPI job, or a process no launcher started (the launcher's variables say)."""
    from .distributed.environment import launched_rank
    return launched_rank() == 0


if __name__ == "__main__":
    sys.exit(main())
