"""``python -m handprop.distributed.train``: a Learner-trained MLP on MNIST, on one process or
data-parallel under ``mpirun``, without the ``handprop train`` command (for tests and benchmarks).

    mpirun -n 2 python -m handprop.distributed.train --hidden 50 --batch-size 64 --out runs/dp
    python -m handprop.distributed.train --no-distributed --hidden 50 --batch-size 64 --out runs/one

Both runs see the same global batches in the same order, so their weights agree to float32
rounding. Rank 0 prints and writes ``--out``: ``weights.npz``, ``metrics.json`` (history, test
accuracy, step and Allreduce times), and the checkpoints ``last.npz`` / ``best.npz``. Ctrl-C or
SIGTERM stops every process at the same step; ``--resume DIR`` continues bit for bit.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import nn, optim
from ..bench.dataset import load_data
from ..bench.models import handprop_mlp
from ..threads import get_num_threads, set_num_threads
from ..data import ArrayDataset, DataLoader
from ..serialize import atomic_write, group, load_arrays, save_arrays
from ..train import callbacks as cbs
from ..train.learner import Learner
from .callbacks import CheckWeights, DataParallel, DistributedRecorder
from .communicator import Communicator, connect
from .errors import StopRequested
from .environment import launcher_command
from .faults import StopSignals, abort_on_error
from .sharding import ShardedLoader, shard_dataset

EXIT_INTERRUPTED = 130
#: Flags a resume may change: they do not change what is computed.
RESUMABLE = ("epochs", "out", "resume", "threads", "distributed", "timeout", "quiet", "data_dir", "argv")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from ..cli import nonneg_float, nonneg_int, positive_float, positive_int

    p = argparse.ArgumentParser(prog="python -m handprop.distributed.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=positive_int, action="append", metavar="N", help="hidden width, repeat "
                   "for depth (default: 50)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="the global batch, over all processes")
    p.add_argument("--epochs", type=positive_int, default=1)
    p.add_argument("--subset", type=positive_int, metavar="N", help="train on the first N of the 50,000 images")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--lr", type=positive_float, default=0.1)
    p.add_argument("--momentum", type=nonneg_float, default=0.0)
    p.add_argument("--seed", type=nonneg_int, default=0, help="initial weights and batch order (default 0)")
    p.add_argument("--no-test", dest="test", action="store_false", help="skip the test pass (for timing)")
    p.add_argument("--synthetic", action="store_true", help="random data of MNIST's shape instead of MNIST")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the MNIST IDX files")
    p.add_argument("--distributed", action=argparse.BooleanOptionalAction, default=None,
                   help="data-parallel over the processes of an MPI job (default: when started by mpirun/srun)")
    p.add_argument("--threads", type=positive_int, help="BLAS threads per process (default: cores / processes "
                   "on this machine)")
    p.add_argument("--check-every", type=positive_int, default=100, metavar="STEPS",
                   help="compare the weights of every process this often")
    p.add_argument("--bucket-mb", type=positive_float, default=25.0, help="gradient bucket size in MiB")
    p.add_argument("--timeout", type=positive_float, default=300.0, metavar="SECONDS",
                   help="end the job when a process waits this long for the others")
    p.add_argument("--out", type=Path, metavar="DIR", help="where rank 0 writes weights, metrics and checkpoints")
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue from DIR/last.npz (writes into DIR)")
    p.add_argument("--quiet", action="store_true", help="print only the final line")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.hidden = args.hidden or [50]
    if args.resume is not None:
        if args.out not in (None, args.resume):
            p.error("--resume writes into the directory it resumes; drop --out")
        args.out = args.resume
    return args


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that define the computation (saved with checkpoints, compared on resume)."""
    return {k: v for k, v in vars(args).items() if k not in RESUMABLE}


class Job:
    """One training run on this process: data, model, loaders, callbacks and the Learner."""

    def __init__(self, args: argparse.Namespace, comm: Communicator | None, stop: StopSignals | None):
        self.args, self.comm = args, comm
        self.rank, self.size = (comm.rank, comm.size) if comm else (0, 1)
        self.is_root = self.rank == 0
        data = load_data(args.data_dir, args.synthetic)
        if data.source.startswith("random") and not args.synthetic:
            raise ValueError(f"{data.source}; or pass --synthetic to train on random data")
        if args.subset is not None and args.subset > len(data.x_train):
            raise ValueError(f"--subset {args.subset}: there are only {len(data.x_train):,} training images")
        n = args.subset or len(data.x_train)
        train = ArrayDataset(data.x_train[:n], data.y_train[:n])
        self.loader_rng = np.random.default_rng(args.seed)
        self.model = handprop_mlp((784, *args.hidden, 10), seed=args.seed)
        params = self.model.parameters()
        self.opt = (optim.SGD(params, lr=args.lr, momentum=args.momentum) if args.optimizer == "sgd"
                    else optim.Adam(params, lr=args.lr))
        writes = self.is_root and args.out is not None
        save = self.save_checkpoint if writes else lambda name, state: None
        self.checkpoint = cbs.Checkpoint(save, monitor="test_loss", rng=self.loader_rng)
        callbacks: list[Any] = [self.checkpoint]
        if comm is None:
            train_dl: Any = DataLoader(train, args.batch_size, shuffle=True, rng=self.loader_rng)
            test = ArrayDataset(data.x_test, data.y_test)
            callbacks.append(cbs.Recorder("test"))
            self.data_parallel = None
        else:
            assert stop is not None
            train_dl = ShardedLoader(train, args.batch_size, comm.rank, comm.size, shuffle=True, rng=self.loader_rng)
            test = shard_dataset(data.x_test, data.y_test, comm.rank, comm.size)
            self.data_parallel = DataParallel(comm, stop, int(args.bucket_mb * 2**20))
            callbacks += [DistributedRecorder(comm, stop, "test"), self.data_parallel,
                          CheckWeights(comm, args.check_every)]
        if self.is_root and not args.quiet:
            callbacks.append(cbs.ProgressBar("test"))
        self.learn = Learner(self.model, nn.CrossEntropyLoss(), self.opt, train_dl,
                             DataLoader(test, 1000) if args.test else None, callbacks)
        self.learn.history = []
        self.last_saved_epoch: int | None = None

    # -- files (rank 0) -------------------------------------------------------------------------
    def _meta(self, **extra: Any) -> dict[str, Any]:
        return {"config": config_of(self.args), "world_size": self.size, "history": self.learn.history, **extra}

    def save_checkpoint(self, name: str, state: dict) -> None:
        arrays = {**{f"model.{k}": v for k, v in state["model"].items()},
                  **{f"opt.{k}": v for k, v in state["opt"].items()}}
        meta = self._meta(epoch=state["epoch"], train_step=state["train_step"], rng=state.get("rng"))
        meta["history"] = meta["history"][:state["epoch"]]
        save_arrays(self.args.out / name, arrays, meta)
        if name == "last.npz":
            self.last_saved_epoch = state["epoch"]

    def resume(self, run_dir: Path) -> str | None:
        """Load ``run_dir/last.npz``; a warning to print when it was written by another number of processes."""
        arrays, meta = load_arrays(run_dir / "last.npz")
        changed = sorted(k for k, v in config_of(self.args).items() if meta["config"].get(k) != v)
        if changed:
            raise ValueError(f"--resume {run_dir}: the checkpoint was trained with other "
                             f"{', '.join('--' + k.replace('_', '-') for k in changed)}; resume with the same flags")
        self.learn.load_state({"model": group(arrays, "model"), "opt": group(arrays, "opt"),
                               "epoch": meta["epoch"], "train_step": meta["train_step"]})
        self.loader_rng.bit_generator.state = meta["rng"]
        self.learn.history = list(meta["history"])
        self.last_saved_epoch = meta["epoch"]
        if meta["world_size"] != self.size:
            return (f"warning: {run_dir} was trained on {meta['world_size']} process(es), resumed on {self.size}: "
                    "same batches in the same order, but the sums are rounded differently, so the result is "
                    "not bit-identical to an uninterrupted run")
        return None

    def results(self, status: str) -> dict[str, Any]:
        """The figures of the run; rank 0 also writes them to ``metrics.json`` (and, when
        finished, the weights to ``weights.npz``)."""
        history = self.learn.history
        result = {"status": status, "world_size": self.size, "threads": get_num_threads(),
                  "steps": self.learn.train_step, "epoch_time_s": [r["time"] for r in history],
                  "allreduce_time_s": self.data_parallel.allreduce_time if self.data_parallel else 0.0,
                  "test_accuracy": history[-1].get("test_accuracy") if history else None}
        if status == "interrupted":
            result["resume"] = resume_command(self.args.argv, self.size, self.args.out)
        if self.is_root and self.args.out is not None:
            if status == "finished":
                save_arrays(self.args.out / "weights.npz", self.model.state_dict(), self._meta())
            with atomic_write(self.args.out / "metrics.json", "w") as f:
                json.dump({**result, "history": history, "config": config_of(self.args)}, f, indent=2)
        return result

    def interrupted(self, reason: KeyboardInterrupt) -> None:
        """Rank 0 checkpoints the state at the start of this epoch and says how to resume."""
        if not self.is_root:
            return
        state = self.checkpoint.epoch_start_state or self.learn.state()
        # After epoch 1, last.npz already holds this epoch's start (written when the last epoch
        # ended): no second write, so the stop fits in mpirun's 0.25 s before SIGKILL.
        if self.args.out is not None and self.last_saved_epoch != state["epoch"]:
            self.save_checkpoint("last.npz", state)
        result = self.results("interrupted")
        print(f"{reason or 'interrupted'}; checkpoint {self.args.out}/last.npz holds the start of epoch "
              f"{state['epoch'] + 1}.\nresume with: {result['resume']}", file=sys.stderr, flush=True)


def resume_command(argv: list[str], size: int, out: Path | None) -> str | None:
    """The command line that continues this run: the same flags, ``--resume`` instead of ``--out``."""
    if out is None:
        return None
    kept, args = [], iter(argv)
    for arg in args:
        if arg in ("--out", "--resume"):
            next(args, None)  # and its value
        elif not arg.startswith(("--out=", "--resume=")):
            kept.append(arg)
    launcher = launcher_command(size)
    return shlex.join([*launcher.split(), "python", "-m", "handprop.distributed.train", *kept, "--resume", str(out)])


def _set_threads(args: argparse.Namespace, comm: Communicator | None) -> None:
    """One BLAS pool per process sized so the processes of one machine share its cores."""
    threads = args.threads or (max(1, (os.cpu_count() or 1) // comm.local_size()) if comm else None)
    if threads is not None:
        set_num_threads(threads)  # (threadpoolctl is a dependency of handprop)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    comm = connect(args.distributed, timeout=args.timeout)
    stop = StopSignals().install() if comm else None
    interrupt = StopRequested if comm else KeyboardInterrupt
    with abort_on_error(comm) if comm else contextlib.nullcontext():
        _set_threads(args, comm)
        if args.out is not None and (comm is None or comm.is_root):
            args.out.mkdir(parents=True, exist_ok=True)
        job = Job(args, comm, stop)
        if args.resume is not None:
            warning = job.resume(args.resume)
            if warning and job.is_root:
                print(warning, file=sys.stderr)
        try:
            job.learn.fit(args.epochs)
        except interrupt as e:
            job.interrupted(e)
            return EXIT_INTERRUPTED
        result = job.results("finished")
    if job.is_root:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
