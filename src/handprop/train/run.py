"""The main job behind ``handprop train``: data -> model -> fit -> test -> run directory.

A run directory holds ``model.npz`` (weights, normalisation, spec), ``last.npz`` and
``best.npz`` (checkpoints with optimiser state), ``metrics.json``, ``metrics.csv``,
``curves.png`` and ``confusion.png``. Every file is written atomically.
"""
from __future__ import annotations

import csv
import io
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, TextIO

import numpy as np

from .. import __version__, nn
from ..data import ArrayDataset, DataLoader, Normalize, load_dataset, to_float_flat, train_valid_split
from ..data.augment import Augment, tta_views
from ..data.datasets import DATASETS
from ..errors import UsageError
from ..optim.lr_scheduler import SCHEDULES
from ..model_file import read_model_file
from ..nn import Module
from ..threads import ThreadChoice, apply_thread_policy, get_num_threads, set_num_threads
from ..serialize import atomic_write, build_model, group, save_model
from . import build as B
from . import callbacks as cbs
from .config import TrainConfig
from .learner import Learner
from .metrics import test_report
from .signals import by_which, signals_held
from .stats import TRAIN_EVERY, ActivationStats

if TYPE_CHECKING:
    from ..distributed import Communicator, StopSignals


#: The dataset whose images may be mirrored (clothes; a mirrored digit is no digit).
FLIPPABLE = "fashion-mnist"


class AveragedOverViews(Module):
    """``model``'s logits averaged over ``views`` of each batch (``--tta``); not saved, only tested."""

    def __init__(self, model: Module, views: list):
        self.model, self.views = model, views

    def forward(self, x: np.ndarray) -> np.ndarray:
        return sum(self.model(view(x)) for view in self.views) / len(self.views)


def model_as_tested(model: Module, cfg: TrainConfig, image_shape: tuple[int, int, int], blank: float) -> Module:
    """What the test figures are computed with: ``model``, or with ``cfg.tta`` its test-time augmented
    form. Mirror images only for a model trained on them (``--augment`` on clothes): Fashion-MNIST's
    shoes all point left, and a model that never saw one pointing right scored 2 points lower
    averaging over mirrored copies (90.5% instead of 92.5%); one-pixel shifts are mild enough for any."""
    if not cfg.tta:
        return model
    return AveragedOverViews(model, tta_views(image_shape, cfg.dataset == FLIPPABLE and cfg.augment, blank))


class TrainingInterrupted(Exception):
    """Ctrl-C or another stop signal during the run: a checkpoint was written; the message says
    how to resume. ``interrupt`` is the KeyboardInterrupt that stopped it."""

    def __init__(self, message: str, interrupt: KeyboardInterrupt):
        super().__init__(message)
        self.interrupt = interrupt


@dataclass
class Data:
    """The arrays of a run, float32 and (optionally) normalised with the training statistics."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray | None
    y_valid: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    normalize: Normalize | None
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (C, H, W) of one image, whatever shape the arrays have

    @property
    def blank(self) -> float:
        """The value a blank (zero) pixel has in these arrays."""
        return blank_value(self.normalize)


def blank_value(normalize: Normalize | None) -> float:
    """The value a blank (zero) pixel has after ``normalize``."""
    return float(normalize(np.zeros(1, np.float32))[0]) if normalize is not None else 0.0


def prepare_data(cfg: TrainConfig) -> Data:
    """Load the dataset, flatten to [0, 1] float32, split off validation, take subsets, normalise;
    the conv models see (N, 1, H, W) views of the flat rows (:func:`model_input`)."""
    (x_tr, y_tr), (x_te, y_te) = load_dataset(cfg.dataset, root=cfg.data_dir, download=cfg.download)
    image_shape = (1, *x_tr.shape[1:])
    if cfg.valid >= len(x_tr):
        raise UsageError(f"valid={cfg.valid} leaves no training images ({cfg.dataset} has {len(x_tr):,})", ["valid"])
    if cfg.subset and cfg.subset > len(x_tr) - cfg.valid:
        raise UsageError(f"subset={cfg.subset} asks for more than the {len(x_tr) - cfg.valid:,} training images "
                         f"({cfg.dataset} has {len(x_tr):,}, valid={cfg.valid} held out)", ["subset", "valid"])
    if cfg.test_subset and cfg.test_subset > len(x_te):
        raise UsageError(f"test_subset={cfg.test_subset} asks for more than the {len(x_te):,} test images",
                         ["test_subset"])
    x_va = y_va = None
    if cfg.valid:
        (x_tr, y_tr), (x_va, y_va) = train_valid_split(x_tr, y_tr, cfg.valid)
        x_va = to_float_flat(x_va)
    if cfg.subset:
        x_tr, y_tr = x_tr[:cfg.subset], y_tr[:cfg.subset]
    x_tr = to_float_flat(x_tr)  # after the cuts: only the images used become float32
    norm = None
    if cfg.normalize:
        norm = Normalize().fit(x_tr)
        for x in (x_tr, x_va):  # in place: these float arrays are ours
            if x is not None:
                norm(x, out=x)
    x_te, y_te = test_split(x_te, y_te, cfg, norm)
    x_tr, x_va = (None if x is None else model_input(x, image_shape, cfg) for x in (x_tr, x_va))
    return Data(x_tr, y_tr, x_va, y_va, x_te, y_te, norm, DATASETS[cfg.dataset].classes, image_shape)


def model_input(x: np.ndarray, image_shape: tuple[int, ...], cfg: TrainConfig) -> np.ndarray:
    """Flat (N, pixels) rows as ``cfg.model`` takes them: as they are (mlp), or a (N, C, H, W) view."""
    return x if cfg.model == "mlp" else x.reshape(len(x), *image_shape)


def test_split(x: np.ndarray, y: np.ndarray, cfg: TrainConfig, normalize: Normalize | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The test images as a run sees them: the first ``test_subset``, flattened to [0, 1]
    float32, normalised with the training statistics, shaped for the model (``handprop evaluate``
    uses this too)."""
    if cfg.test_subset:
        x, y = x[:cfg.test_subset], y[:cfg.test_subset]
    image_shape = (1, *x.shape[1:])
    x = to_float_flat(x)
    if normalize is not None:
        normalize(x, out=x)
    return model_input(x, image_shape, cfg), y


def check_run_dir(out: Path, n_params: int) -> None:
    """Fail before training if ``out`` cannot be created or written, or lacks room for the run's files."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / ".write-test") as f:
            f.write(b"ok")
        (out / ".write-test").unlink()
    except OSError as e:
        raise UsageError(f"cannot write to the output directory {out}: {e.strerror or e}") from None
    # model + best + last (with up to two optimiser buffers each) in float32, plots and logs.
    needed = 4 * n_params * 8 + 4_000_000
    free = shutil.disk_usage(out).free
    if free < needed:
        raise UsageError(f"not enough free space in {out}: {free / 1e6:.1f} MB free, "
                         f"the run needs about {needed / 1e6:.1f} MB")


class Run:
    """One training run: builds everything from a :class:`TrainConfig` and owns the run directory.

    Start one with :meth:`create` (a new run) or :meth:`resume` (continue one from its ``last.npz``).

    Data-parallel (``comm``, one Run on each process of an MPI job, see docs/distributed.md):
    ``batch_size`` is the global batch, each process trains on its slice of it and validates on
    its share of the validation set; the callbacks of :mod:`handprop.distributed` average the
    gradients, reduce the metrics and check that the weights stay identical. Only rank 0 prints
    and writes the run directory (``is_root``); ``stop`` holds the stop signals every process
    agrees on.
    """

    def __init__(self, cfg: TrainConfig, out: Path, stream: TextIO | None = None, quiet: bool = False,
                 threads: int | None = None, comm: Communicator | None = None, stop: StopSignals | None = None):
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"Run needs a TrainConfig (see TrainConfig.create), got {type(cfg).__name__}")
        if (comm is None) != (stop is None):
            raise TypeError("Run: a data-parallel run needs both comm and stop")
        self.cfg, self.out, self.stream, self.quiet = cfg, Path(out), stream, quiet
        self.comm, self.stop = comm, stop
        self.is_root, self.world_size = (True, 1) if comm is None else (comm.is_root, comm.size)
        if cfg.batch_size is not None and cfg.batch_size < self.world_size:
            raise UsageError(f"batch_size={cfg.batch_size} is the global batch, smaller than the {self.world_size} "
                             "processes: each needs at least one example (give a larger one)", ["batch_size"])
        seeds = np.random.SeedSequence(cfg.seed).spawn(2)
        self.init_rng, self.loader_rng = (np.random.default_rng(s) for s in seeds)
        self.data = prepare_data(cfg)
        n_classes = len(self.data.classes)
        self.spec = B.model_spec(self.data.x_train.shape[1], n_classes, cfg)  # features, or channels
        self.model = build_model(self.spec)
        B.initialise(self.model, cfg, self.init_rng)
        if cfg.init == "lsuv":  # layer-sequential unit variance on a batch of training images
            nn.init.lsuv_(self.model, self.data.x_train[:512])
        if self.is_root:
            check_run_dir(self.out, sum(p.data.size for p in self.model.parameters()))
        self.loss = B.build_loss(cfg)
        self.lr = B.effective_lr(cfg, len(self.data.x_train))
        self.opt = B.build_optimizer(cfg, self.model.parameters(), self.lr)
        self.valid_name = "valid" if self.data.x_valid is not None else "test"
        x_va, y_va = ((self.data.x_valid, self.data.y_valid) if self.data.x_valid is not None
                      else (self.data.x_test, self.data.y_test))
        # the augmentation draws from the loader's generator: a checkpoint's rng state covers both
        self.augment = Augment(self.data.image_shape, self.loader_rng, flip=cfg.dataset == FLIPPABLE,
                               fill=self.data.blank) if cfg.augment else None
        train_set = ArrayDataset(self.data.x_train, B.encode_targets(self.data.y_train, n_classes, cfg))
        valid_set = ArrayDataset(x_va, B.encode_targets(y_va, n_classes, cfg))
        every = cfg.log_every
        self.checkpoint = cbs.Checkpoint(self._save_checkpoint, monitor=f"{self.valid_name}_loss", every=every,
                                         rng=self.loader_rng)
        if comm is None:
            train_dl = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=cfg.shuffle, rng=self.loader_rng,
                                  transform=self.augment)
            self.recorder = cbs.Recorder(self.valid_name)
            parallel: list[Any] = []
        else:
            from .. import distributed as D
            train_dl = D.ShardedLoader(train_set, cfg.batch_size, comm.rank, comm.size, shuffle=bool(cfg.shuffle),
                                       rng=self.loader_rng, transform=self.augment)
            valid_set = D.shard_dataset(valid_set.x, valid_set.y, comm.rank, comm.size)
            self.recorder = D.DistributedRecorder(comm, stop, self.valid_name)
            parallel = [D.DataParallel(comm, stop), D.CheckWeights(comm)]
        valid_dl = DataLoader(valid_set, batch_size=None if cfg.full_batch else 1000)
        callbacks = [self.recorder, cbs.NonFiniteGuard(), self.checkpoint,
                     cbs.History(self.write_metrics, every=every), *parallel]
        if not quiet and self.is_root:
            callbacks.append(cbs.ProgressBar(self.valid_name, cfg.metric, every,
                                             "step" if cfg.full_batch else "epoch", stream))
        if cfg.stats and self.is_root:  # (of rank 0's slices: the statistics of its activations)
            callbacks.append(ActivationStats(every=TRAIN_EVERY, out=self.out, stream=stream))
        if cfg.schedule != "none":
            total = cfg.epochs * len(train_dl)
            callbacks.append(cbs.LRSchedule(SCHEDULES[cfg.schedule](self.lr, total)))
        self.early_stopping = cbs.EarlyStopping(f"{self.valid_name}_loss", cfg.patience) if cfg.patience else None
        if self.early_stopping:
            callbacks.append(self.early_stopping)
        self.learn = Learner(self.model, self.loss, self.opt, train_dl, valid_dl, callbacks)
        self.learn.history = []
        # BLAS threads: --threads, else the policy (one thread for small models or a busy machine);
        # the processes of a data-parallel job on one machine share its CPUs
        if comm is not None and threads is None:
            threads = comm.threads_per_process()
            self.thread_choice = ThreadChoice(threads, f"{comm.size} processes: this machine's CPUs shared "
                                              "among its processes; --threads N to override")
            set_num_threads(threads)
        else:
            self.thread_choice = apply_thread_policy(threads, self.model, cfg.batch_size or len(self.data.x_train))
        self.blas_threads = get_num_threads()
        self.started, self.time_before = time.time(), 0.0  # time_before: earlier sessions of a resumed run
        self.result: dict[str, Any] = {}

    @classmethod
    def create(cls, cfg: TrainConfig, out: Path | str | None = None, *, stream: TextIO | None = None,
               quiet: bool = False, threads: int | None = None, comm: Communicator | None = None,
               stop: StopSignals | None = None) -> Run:
        """A new run of ``cfg`` writing into ``out`` (default: a new ``runs/<timestamp>-<n>``; the
        CLI claims the directory first, see :mod:`handprop.train.rundir`). ``threads``: NumPy's
        BLAS threads (default: :func:`handprop.threads.apply_thread_policy` decides). ``comm``
        and ``stop``: data-parallel, on every process of the job (see the class docstring)."""
        from .rundir import new_default_run_dir
        return cls(cfg, Path(out) if out is not None else new_default_run_dir(), stream, quiet, threads, comm, stop)

    @classmethod
    def resume(cls, run_dir: Path | str, overrides: Mapping[str, Any] | None = None, *,
               stream: TextIO | None = None, quiet: bool = False, threads: int | None = None,
               comm: Communicator | None = None, stop: StopSignals | None = None) -> Run:
        """Continue the run in ``run_dir`` from its ``last.npz``: the saved config (``overrides``
        may change only :data:`RESUME_OVERRIDES`), model, optimiser, data order, step count,
        history, and the best validation loss so far (which decides what ``best.npz`` holds).
        Data-parallel, every process reads the checkpoint; another number of processes than
        the checkpoint's trains the same batches but warns that sums are rounded differently."""
        overrides = dict(overrides or {})
        refused = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if refused:
            raise UsageError(f"a resume continues the saved configuration; only epochs, data_dir and download "
                             f"may change (drop {', '.join(refused)})", [*RESUME_OVERRIDES, *refused])
        run_dir = Path(run_dir)
        checkpoint = run_dir / "last.npz"
        if not checkpoint.is_file():
            raise UsageError(f"cannot resume {run_dir}: no checkpoint last.npz there (is it a handprop run directory?)")
        # checked against its schema first: its config describes the model its arrays hold, so the
        # run built from it allocates no more than the checkpoint backs
        ckpt = read_model_file(checkpoint, "checkpoint")
        saved = TrainConfig.from_dict(ckpt.meta["config"], str(checkpoint))
        _check_resumed_epochs(saved, overrides.get("epochs"), ckpt.meta["epoch"])
        run = cls(replace(saved, **overrides), run_dir, stream, quiet, threads, comm, stop)
        run._restore(ckpt)
        return run

    def _restore(self, ckpt) -> None:
        """Put the checkpoint's state into the run: weights, optimiser, data order, step count,
        history, clock, and the best validation loss so far (which decides ``best.npz``)."""
        ckpt.restore(self.learn)
        if ckpt.meta["rng"] is not None:
            self.loader_rng.bit_generator.state = ckpt.meta["rng"]
        self.learn.history = list(ckpt.meta["history"])
        self.time_before = ckpt.meta.get("wall_time_s", 0.0)
        saved_threads = ckpt.meta.get("blas_threads")
        if saved_threads is not None and saved_threads != self.blas_threads and self.is_root:
            print(f"warning: {ckpt.path} was written with {saved_threads} BLAS thread(s), this process uses "
                  f"{self.blas_threads}: the resumed run will not be bit-identical to an uninterrupted one "
                  f"(resume with --threads {saved_threads} for that)", file=sys.stderr)
        saved_size = ckpt.meta.get("world_size", 1)
        if saved_size != self.world_size and self.is_root:
            print(f"warning: {ckpt.path} was trained on {saved_size} process(es), resumed on {self.world_size}: "
                  "the same batches in the same order, but the gradient sums are rounded differently, so the "
                  "result is not bit-identical to an uninterrupted run", file=sys.stderr)
        losses = [r[f"{self.valid_name}_loss"] for r in self.learn.history
                  if r.get(f"{self.valid_name}_loss") is not None]
        self.checkpoint.best = min(losses, default=self.checkpoint.best)

    # -- describing ----------------------------------------------------------------------------
    def describe(self) -> str:
        """Two lines: the data, then the model and training with every other setting that
        differs from the defaults."""
        d, cfg = self.data, self.cfg
        sizes = "-".join(str(s) for s in [d.x_train.shape[1], *cfg.hidden, len(d.classes)])
        blocks = sum(type(m).__name__ in ("Conv2d", "ResBlock") for m in self.model)
        arch = {"mlp": f"MLP {sizes}", "cnn": f"CNN of {blocks} conv-BN-{cfg.activation} layers",
                "resnet": f"ResNet of {blocks} ResBlocks"}[cfg.model]
        params = sum(p.data.size for p in self.model.parameters())
        splits = f"{len(d.x_train):,} train" + (f" / {len(d.x_valid):,} valid" if d.x_valid is not None else "")
        batch = "full batch" if cfg.full_batch else f"batch {cfg.batch_size}"
        if self.world_size > 1:
            batch = f"global {batch} over {self.world_size} processes (data-parallel)"
        norm = f"normalised with train mean {d.normalize.mean:.4f}, std {d.normalize.std:.4f}" \
            if d.normalize else "raw [0, 1] pixels"
        model = (f"model: {arch} ({params:,} parameters), {cfg.activation}, loss {cfg.loss} ({cfg.reduction}), "
                 f"{type(self.opt).__name__} lr {self.lr:g}, {batch}, schedule {cfg.schedule}, "
                 f"{cfg.epochs} {'steps' if cfg.full_batch else 'epochs'}, seed {cfg.seed}")
        return f"{cfg.dataset}: {splits} / {len(d.x_test):,} test, {norm}\n" + \
            ", ".join([model, *cfg.changes(skip=_DESCRIBED)])

    # -- files ---------------------------------------------------------------------------------
    def wall_time(self) -> float:
        """Seconds since the run started, over every session of a resumed run."""
        return self.time_before + time.time() - self.started

    def _save_checkpoint(self, name: str, state: dict) -> None:
        if not self.is_root:  # the other processes hold the same state
            return
        opt = {f"opt.{k}": v for k, v in state["opt"].items()}
        meta = {"kind": "checkpoint", "config": self.cfg.to_dict(), "epoch": state["epoch"],
                "train_step": state["train_step"], "rng": state.get("rng"),
                "history": _finite_or_null(self.learn.history[:state["epoch"]]), "wall_time_s": self.wall_time(),
                "blas_threads": self.blas_threads, "world_size": self.world_size}
        with signals_held():
            save_model(self.out / name, state["model"], self.spec, self.data.normalize, meta, extra=opt)

    def write_metrics(self) -> None:
        """metrics.json (config, history, final figures once known) and metrics.csv (LF line
        endings, the header row even before the first epoch); rank 0's files alone."""
        if not self.is_root:
            return
        payload = {"config": self.cfg.to_dict(), "history": self.learn.history, **self.result,
                   "wall_time_s": round(self.wall_time(), 3), "blas_threads": self.blas_threads,
                   "world_size": self.world_size, "handprop": __version__}
        keys = self.recorder.fields()
        for rec in self.learn.history:  # and whatever other callbacks recorded
            keys += [k for k in rec if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.learn.history)
        with signals_held():
            with atomic_write(self.out / "metrics.json", "w") as f:
                json.dump(_finite_or_null(payload), f, indent=2, allow_nan=False)
            with atomic_write(self.out / "metrics.csv") as f:
                f.write(buf.getvalue().encode())

    # -- the job ---------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train, evaluate on the test set, write every file; return the final figures.

        A stop signal (Ctrl-C, SIGTERM, SIGHUP) at any point, the final evaluation and plots
        included, writes ``last.npz`` and raises :class:`TrainingInterrupted`. NumPy's
        floating-point warnings are silenced: :class:`NonFiniteGuard` reports a divergence.
        """
        training = True
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                self.learn.fit(self.cfg.epochs)
                training = False
                if not self.is_root:  # rank 0 tests and writes the model every process holds
                    return {"status": self._status()}
                return self.finish()
        except KeyboardInterrupt as interrupt:
            raise self._checkpoint_interrupted(interrupt, training) from None

    def _status(self) -> str:
        """How training ended: ``diverged`` (the NonFiniteGuard stopped it) or ``finished``."""
        return "diverged" if getattr(self.learn, "diverged", False) else "finished"

    def _checkpoint_interrupted(self, interrupt: KeyboardInterrupt, training: bool) -> TrainingInterrupted:
        """Write the last consistent state (the start of the interrupted epoch, or the end of
        training) and say how to resume; a second signal meanwhile cannot cut the write short."""
        with signals_held(replay=False):
            state = self.checkpoint.epoch_start_state or self.checkpoint.current_state()
            self.checkpoint.flush()
            self._save_checkpoint("last.npz", state)
            self.result = {"status": "interrupted", "resume": self.resume_command()}
            self.write_metrics()
        unit = "step" if self.cfg.full_batch else "epoch"
        where = (f"in {unit} {self.learn.epoch + 1}; checkpoint {self.out / 'last.npz'} holds the state at its start"
                 if training else f"after training, during the final evaluation and plots; checkpoint "
                 f"{self.out / 'last.npz'} holds the final state (resuming only evaluates and writes the files)")
        how = f" ({interrupt})" if self.comm is not None else by_which(interrupt)  # which process got what
        return TrainingInterrupted(f"interrupted{how} {where}.\n"
                                   f"resume with: {self.resume_command()}", interrupt)

    def resume_command(self) -> str:
        """The command that continues this run (under the launcher that started it)."""
        from ..distributed.environment import launcher_command
        return " ".join(filter(None, [launcher_command(self.world_size), "handprop train --resume",
                                      shlex.quote(str(self.out))]))

    def finish(self) -> dict[str, Any]:
        """Test figures and the final files. After early stopping the model is first set back
        to its best-validation weights (``best.npz``): those are saved and tested."""
        d = self.data
        n_classes = len(d.classes)
        model_epoch = len(self.learn.history)
        if self.early_stopping is not None and self.early_stopping.stopped:
            model_epoch = self._restore_best()
        report = test_report(model_as_tested(self.model, self.cfg, d.image_shape, d.blank), self.loss, d.x_test,
                             B.encode_targets(d.y_test, n_classes, self.cfg), n_classes)
        matrix = report.pop("confusion_matrix")
        self.result = {"status": self._status(),
                       "stop_reason": getattr(self.learn, "stop_reason", None), **report,
                       "confusion_matrix": matrix.tolist(), "epochs_done": len(self.learn.history),
                       "model_epoch": model_epoch}
        with signals_held():
            save_model(self.out / "model.npz", self.model, self.spec, d.normalize,
                       {"kind": "model", "dataset": self.cfg.dataset, "config": self.cfg.to_dict(),
                        "test_accuracy": report["test_accuracy"], "classes": list(d.classes)})
        self.write_metrics()
        self.plots(matrix)
        return self.result

    def _restore_best(self) -> int:
        """Load the best-validation weights (``best.npz``) into the model; return their epoch.
        (No epoch had a finite validation loss: no ``best.npz``, the weights stay.)"""
        if not (self.out / "best.npz").is_file():
            return len(self.learn.history)
        best = read_model_file(self.out / "best.npz", "checkpoint")
        self.model.load_state_dict(group(best.arrays, "model"))
        return int(best.meta["epoch"])

    def plots(self, matrix: np.ndarray) -> None:
        from ..figures import have_matplotlib
        from .plots import plot_confusion, plot_curves

        if not have_matplotlib("curves.png and confusion.png"):
            return
        with signals_held():
            plot_curves(self.learn.history, self.out / "curves.png", self.valid_name)
            plot_confusion(matrix, self.data.classes, self.out / "confusion.png",
                           f"{self.cfg.dataset} test: {self.result['test_accuracy']:.2%} accuracy")

    def summary(self) -> str:
        r = self.result
        files = " ".join(sorted(p.name for p in self.out.iterdir() if not p.name.startswith(".")))
        lines = []
        if r.get("stop_reason"):
            lines.append(f"stopped: {r['stop_reason']}")
        if r["model_epoch"] != r["epochs_done"]:
            lines.append(f"model.npz holds the weights of epoch {r['model_epoch']} (best {self.valid_name}_loss); "
                         f"the test figures are theirs")
        lines.append(f"test accuracy {r['test_accuracy']:.2%} (error {r['test_error']:.2%}), "
                     f"test loss {r['test_loss']:.4f}, {self.wall_time():.1f} s")
        lines.append(f"wrote {self.out}/: {files}")
        return "\n".join(lines)


#: What a resume may change: where the data is and whether to download it (the result does not
#: depend on them), and how many epochs to train in all. Anything else would not be a resume.
RESUME_OVERRIDES = ("epochs", "data_dir", "download")

#: The settings :meth:`Run.describe` shows in its own words (the rest are listed when not default).
_DESCRIBED = ("model", "dataset", "valid", "subset", "test_subset", "normalize", "hidden", "activation", "loss",
              "reduction", "optimizer", "lr", "batch_size", "schedule", "epochs", "seed")


def _finite_or_null(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON has no literal for them."""
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _check_resumed_epochs(cfg: TrainConfig, epochs: int | None, done: int) -> None:
    """``epochs`` on a resume: not fewer than are done; not changed under a learning-rate
    schedule, which was planned for the run's length (a new length would make the rate jump)."""
    if epochs is None or epochs == cfg.epochs:
        return
    # (no "epochs" as a plain word in these messages: the CLI rewrites the field's name as its flag)
    if epochs < done:
        raise UsageError(f"epochs={epochs} is fewer than the {done} this run has done already "
                         f"(give {done} or more)", ["epochs"])
    if cfg.schedule != "none":
        raise UsageError(f"epochs={epochs}: this run's {cfg.schedule} learning-rate schedule was planned "
                         f"for {cfg.epochs} in all, and a resume cannot re-plan it without the rate jumping; "
                         f"start a new run with epochs={epochs}", ["epochs"])
