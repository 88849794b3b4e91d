"""The main job behind ``handprop train``: data -> model -> fit -> test -> run directory.

A run directory holds ``model.npz`` (weights, normalisation, spec), ``last.npz`` and
``best.npz`` (checkpoints with optimiser state), ``metrics.json``, ``metrics.csv``,
``curves.png`` and ``confusion.png``. Every file is written atomically.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, TextIO

import numpy as np

from .. import __version__
from ..data import ArrayDataset, DataLoader, Normalize, load_dataset, to_float_flat, train_valid_split
from ..data.datasets import DATASETS
from ..errors import UsageError
from ..optim.lr_scheduler import SCHEDULES
from ..serialize import atomic_write, build_model, group, load_arrays, save_model
from . import build as B
from . import callbacks as cbs
from .config import TrainConfig
from .learner import Learner
from .metrics import test_report


class TrainingInterrupted(Exception):
    """Ctrl-C during training: a checkpoint was written; the message says how to resume."""


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


def prepare_data(cfg: TrainConfig) -> Data:
    """Load the dataset, flatten to [0, 1] float32, split off validation, take subsets, normalise."""
    (x_tr, y_tr), (x_te, y_te) = load_dataset(cfg.dataset, root=cfg.data_dir, download=cfg.download)
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
    return Data(x_tr, y_tr, x_va, y_va, x_te, y_te, norm, DATASETS[cfg.dataset].classes)


def test_split(x: np.ndarray, y: np.ndarray, cfg: TrainConfig, normalize: Normalize | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The test images as a run sees them: the first ``test_subset``, flattened to [0, 1]
    float32, normalised with the training statistics (``handprop evaluate`` uses this too)."""
    if cfg.test_subset:
        x, y = x[:cfg.test_subset], y[:cfg.test_subset]
    x = to_float_flat(x)
    if normalize is not None:
        normalize(x, out=x)
    return x, y


def default_run_dir() -> Path:
    """``runs/<YYYYmmdd-HHMMSS>`` (with a suffix if that exists already)."""
    base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{base.name}-{i}"), i + 1
    return path


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
    """

    def __init__(self, cfg: TrainConfig, out: Path, stream: TextIO | None = None, quiet: bool = False):
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"Run needs a TrainConfig (see TrainConfig.create), got {type(cfg).__name__}")
        self.cfg, self.out, self.stream, self.quiet = cfg, Path(out), stream, quiet
        seeds = np.random.SeedSequence(cfg.seed).spawn(2)
        self.init_rng, self.loader_rng = (np.random.default_rng(s) for s in seeds)
        self.data = prepare_data(cfg)
        n_classes = len(self.data.classes)
        self.spec = B.model_spec(self.data.x_train.shape[1], n_classes, cfg)
        self.model = build_model(self.spec)
        B.initialise(self.model, cfg, self.init_rng)
        check_run_dir(self.out, sum(p.data.size for p in self.model.parameters()))
        self.loss = B.build_loss(cfg)
        self.lr = B.effective_lr(cfg, len(self.data.x_train))
        self.opt = B.build_optimizer(cfg, self.model.parameters(), self.lr)
        self.valid_name = "valid" if self.data.x_valid is not None else "test"
        x_va, y_va = ((self.data.x_valid, self.data.y_valid) if self.data.x_valid is not None
                      else (self.data.x_test, self.data.y_test))
        train_dl = DataLoader(ArrayDataset(self.data.x_train, B.encode_targets(self.data.y_train, n_classes, cfg)),
                              batch_size=cfg.batch_size, shuffle=cfg.shuffle, rng=self.loader_rng)
        valid_dl = DataLoader(ArrayDataset(x_va, B.encode_targets(y_va, n_classes, cfg)),
                              batch_size=None if cfg.full_batch else 1000)
        every = cfg.log_every
        self.checkpoint = cbs.Checkpoint(self._save_checkpoint, monitor=f"{self.valid_name}_loss", every=every,
                                         rng=self.loader_rng)
        callbacks = [cbs.Recorder(self.valid_name), cbs.NonFiniteGuard(), self.checkpoint,
                     cbs.History(self.write_metrics, every=every)]
        if not quiet:
            callbacks.append(cbs.ProgressBar(self.valid_name, cfg.metric, every,
                                             "step" if cfg.full_batch else "epoch", stream))
        if cfg.schedule != "none":
            total = cfg.epochs * len(train_dl)
            callbacks.append(cbs.LRSchedule(SCHEDULES[cfg.schedule](self.lr, total)))
        if cfg.patience:
            callbacks.append(cbs.EarlyStopping(f"{self.valid_name}_loss", cfg.patience))
        self.learn = Learner(self.model, self.loss, self.opt, train_dl, valid_dl, callbacks)
        self.learn.history = []
        self.started = time.time()
        self.result: dict[str, Any] = {}

    @classmethod
    def create(cls, cfg: TrainConfig, out: Path | str | None = None, *, stream: TextIO | None = None,
               quiet: bool = False) -> Run:
        """A new run of ``cfg`` writing into ``out`` (default: :func:`default_run_dir`)."""
        return cls(cfg, Path(out) if out is not None else default_run_dir(), stream, quiet)

    @classmethod
    def resume(cls, run_dir: Path | str, overrides: Mapping[str, Any] | None = None, *,
               stream: TextIO | None = None, quiet: bool = False) -> Run:
        """Continue the run in ``run_dir`` from its ``last.npz``: the saved config (``overrides``
        may change only :data:`RESUME_OVERRIDES`), model, optimiser, data order, step count,
        history, and the best validation loss so far (which decides what ``best.npz`` holds)."""
        overrides = dict(overrides or {})
        refused = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if refused:
            raise UsageError(f"a resume continues the saved configuration; only epochs, data_dir and download "
                             f"may change (drop {', '.join(refused)})", [*RESUME_OVERRIDES, *refused])
        run_dir = Path(run_dir)
        checkpoint = run_dir / "last.npz"
        if not checkpoint.is_file():
            raise UsageError(f"cannot resume {run_dir}: no checkpoint last.npz there (is it a handprop run directory?)")
        try:
            arrays, meta = load_arrays(checkpoint)
        except ValueError as e:  # not a readable .npz
            raise UsageError(str(e)) from None
        if meta.get("kind") != "checkpoint":
            raise UsageError(f"cannot resume from {checkpoint}: not a handprop checkpoint")
        cfg = replace(TrainConfig.from_dict(meta.get("config"), str(checkpoint)), **overrides)
        if cfg.epochs < meta["epoch"]:
            raise UsageError(f"epochs={cfg.epochs}, but {checkpoint} has {meta['epoch']} done already", ["epochs"])
        run = cls(cfg, run_dir, stream, quiet)
        run._restore(arrays, meta)
        return run

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        state = {"model": group(arrays, "model"), "opt": group(arrays, "opt"),
                 "epoch": meta["epoch"], "train_step": meta["train_step"]}
        self.learn.load_state(state)
        if meta.get("rng"):
            self.loader_rng.bit_generator.state = meta["rng"]
        self.learn.history = list(meta.get("history", []))
        losses = [r[f"{self.valid_name}_loss"] for r in self.learn.history if f"{self.valid_name}_loss" in r]
        self.checkpoint.best = min(losses, default=self.checkpoint.best)

    # -- describing ----------------------------------------------------------------------------
    def describe(self) -> str:
        """Two lines: the data, then the model and training with every other setting that
        differs from the defaults."""
        d, cfg = self.data, self.cfg
        sizes = "-".join(str(s) for s in [d.x_train.shape[1], *cfg.hidden, len(d.classes)])
        splits = f"{len(d.x_train):,} train" + (f" / {len(d.x_valid):,} valid" if d.x_valid is not None else "")
        batch = "full batch" if cfg.full_batch else f"batch {cfg.batch_size}"
        norm = f"normalised with train mean {d.normalize.mean:.4f}, std {d.normalize.std:.4f}" \
            if d.normalize else "raw [0, 1] pixels"
        model = (f"model: MLP {sizes}, {cfg.activation}, loss {cfg.loss} ({cfg.reduction}), "
                 f"{type(self.opt).__name__} lr {self.lr:g}, {batch}, schedule {cfg.schedule}, "
                 f"{cfg.epochs} {'steps' if cfg.full_batch else 'epochs'}, seed {cfg.seed}")
        return f"{cfg.dataset}: {splits} / {len(d.x_test):,} test, {norm}\n" + \
            ", ".join([model, *cfg.changes(skip=_DESCRIBED)])

    # -- files ---------------------------------------------------------------------------------
    def _save_checkpoint(self, name: str, state: dict) -> None:
        opt = {f"opt.{k}": v for k, v in state["opt"].items()}
        meta = {"kind": "checkpoint", "config": self.cfg.to_dict(), "epoch": state["epoch"],
                "train_step": state["train_step"], "rng": state.get("rng"),
                "history": self.learn.history[:state["epoch"]]}
        save_model(self.out / name, state["model"], self.spec, self.data.normalize, meta, extra=opt)

    def write_metrics(self) -> None:
        """metrics.json (config, history, final figures once known) and metrics.csv."""
        payload = {"config": self.cfg.to_dict(), "history": self.learn.history, **self.result,
                   "wall_time_s": round(time.time() - self.started, 3), "handprop": __version__}
        with atomic_write(self.out / "metrics.json", "w") as f:
            json.dump(_finite_or_null(payload), f, indent=2, allow_nan=False)
        keys: list[str] = []
        for rec in self.learn.history:
            keys += [k for k in rec if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.learn.history)
        with atomic_write(self.out / "metrics.csv", "w") as f:
            f.write(buf.getvalue())

    # -- the job ---------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train, evaluate on the test set, write every file; return the final figures."""
        learn = self.learn
        try:
            learn.fit(self.cfg.epochs)
        except KeyboardInterrupt:
            state = self.checkpoint.epoch_start_state or learn.state()
            self.checkpoint.flush()
            self._save_checkpoint("last.npz", state)
            self.result = {"status": "interrupted"}
            self.write_metrics()
            raise TrainingInterrupted(
                f"interrupted in {'step' if self.cfg.full_batch else 'epoch'} {learn.epoch + 1}; "
                f"checkpoint {self.out / 'last.npz'} holds the state at its start.\n"
                f"resume with: handprop train --resume {self.out}") from None
        return self.finish()

    def finish(self) -> dict[str, Any]:
        d = self.data
        n_classes = len(d.classes)
        report = test_report(self.model, self.loss, d.x_test, B.encode_targets(d.y_test, n_classes, self.cfg),
                             n_classes)
        matrix = report.pop("confusion_matrix")
        self.result = {"status": "diverged" if getattr(self.learn, "diverged", False) else "finished",
                       "stop_reason": getattr(self.learn, "stop_reason", None), **report,
                       "confusion_matrix": matrix.tolist(), "epochs_done": self.learn.start_epoch}
        save_model(self.out / "model.npz", self.model, self.spec, d.normalize,
                   {"kind": "model", "dataset": self.cfg.dataset, "config": self.cfg.to_dict(),
                    "test_accuracy": report["test_accuracy"], "classes": list(d.classes)})
        self.write_metrics()
        self.plots(matrix)
        return self.result

    def plots(self, matrix: np.ndarray) -> None:
        try:
            from .plots import plot_confusion, plot_curves
        except ImportError:
            print("note: matplotlib is not installed, skipping curves.png and confusion.png "
                  "(pip install 'handprop[cli]')", file=sys.stderr)
            return
        plot_curves(self.learn.history, self.out / "curves.png", self.valid_name)
        plot_confusion(matrix, self.data.classes, self.out / "confusion.png",
                       f"{self.cfg.dataset} test: {self.result['test_accuracy']:.2%} accuracy")

    def summary(self) -> str:
        r = self.result
        files = " ".join(sorted(p.name for p in self.out.iterdir() if not p.name.startswith(".")))
        lines = []
        if r.get("stop_reason"):
            lines.append(f"stopped: {r['stop_reason']}")
        lines.append(f"test accuracy {r['test_accuracy']:.2%} (error {r['test_error']:.2%}), "
                     f"test loss {r['test_loss']:.4f}, {time.time() - self.started:.1f} s")
        lines.append(f"wrote {self.out}/: {files}")
        return "\n".join(lines)


#: What a resume may change: where the data is and whether to download it (the result does not
#: depend on them), and how many epochs to train in all. Anything else would not be a resume.
RESUME_OVERRIDES = ("epochs", "data_dir", "download")

#: The settings :meth:`Run.describe` shows in its own words (the rest are listed when not default).
_DESCRIBED = ("dataset", "valid", "subset", "test_subset", "normalize", "hidden", "activation", "loss",
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
