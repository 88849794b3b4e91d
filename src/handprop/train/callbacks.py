"""The callbacks shipped with the Learner: metrics, progress, history, checkpoints, early
stopping, learning-rate schedules and the non-finite loss guard."""
from __future__ import annotations

import math
import sys
import time
from typing import Callable, TextIO

import numpy as np

from .learner import Callback, CancelFitException
from .metrics import correct_count


class Recorder(Callback):
    """Loss, accuracy and error rate of each pass, one ``learn.record`` dict per epoch.

    The epoch loss is the criterion over the whole pass: the size-weighted mean of the batch
    losses for reduction='mean', their sum for reduction='sum'. ``learn.history`` keeps every record;
    ``elapsed`` counts on from its last record (a resumed run's clock continues).
    """

    order = -20

    def __init__(self, valid_name: str = "valid"):
        self.valid_name = valid_name

    def fields(self) -> list[str]:
        """The keys of every record, in order (a CSV header that exists before the first epoch)."""
        passes = [f"{p}_{m}" for p in ("train", self.valid_name) for m in ("loss", "accuracy", "error")]
        return ["epoch", *passes[:3], "lr", *passes[3:], "time", "elapsed"]

    def before_fit(self) -> None:
        if not hasattr(self.learn, "history"):
            self.learn.history = []
        before = self.learn.history[-1].get("elapsed", 0.0) if self.learn.history else 0.0
        self.fit_start = time.perf_counter() - before
        # a loss without a reduction (e.g. an autograd TensorLoss) is taken as a batch mean
        self.summed = getattr(self.learn.loss_func, "reduction", "mean") == "sum"

    def before_epoch(self) -> None:
        self.learn.record = {"epoch": self.learn.epoch + 1}
        self.epoch_start = time.perf_counter()

    def _reset(self) -> None:
        self.total_loss, self.correct, self.count = 0.0, 0, 0

    before_train = before_validate = _reset

    def after_loss(self) -> None:
        n = len(self.learn.xb)
        self.total_loss += self.learn.loss * (1 if self.summed else n)
        self.correct += correct_count(self.learn.preds, self.learn.yb)
        self.count += n

    def _finish(self, prefix: str) -> None:
        if not self.count:
            return
        loss = self.total_loss if self.summed else self.total_loss / self.count
        acc = self.correct / self.count
        self.learn.record.update({f"{prefix}_loss": loss, f"{prefix}_accuracy": acc, f"{prefix}_error": 1 - acc})

    def after_train(self) -> None:
        self._finish("train")
        self.learn.record["lr"] = self.learn.opt.lr

    def after_validate(self) -> None:
        self._finish(self.valid_name)

    def after_epoch(self) -> None:
        now = time.perf_counter()
        self.learn.record.update(time=now - self.epoch_start, elapsed=now - self.fit_start)
        self.learn.history.append(self.learn.record)


def _is_logged(learn, every: int) -> bool:
    """Report epoch 1, every ``every``-th epoch, and the last one."""
    e = learn.epoch + 1
    return e == 1 or e % every == 0 or e == learn.n_epochs


def renders_bars(stream: TextIO) -> bool:
    """Whether ``stream`` shows live bars: a terminal, or a Jupyter kernel's own output stream
    (not a tty, but the notebook draws it); files and pipes get plain lines."""
    in_kernel = "ipykernel" in sys.modules and type(stream).__module__.startswith("ipykernel.")
    return in_kernel or stream.isatty()


class ProgressBar(Callback):
    """A per-epoch table; on a terminal or in Jupyter, a tqdm bar per pass, else one plain line per epoch.

    ``metric`` picks the column shown beside the losses ('accuracy' or 'error', in percent);
    ``every`` prints only every n-th epoch (full-batch runs have one step per epoch).
    """

    order = 10

    def __init__(self, valid_name: str = "valid", metric: str = "accuracy", every: int = 1,
                 label: str = "epoch", stream: TextIO | None = None):
        self.valid_name, self.metric, self.every, self.label = valid_name, metric, every, label
        self.stream = stream or sys.stdout
        self.bar = None
        self.use_bars = every == 1 and renders_bars(self.stream)

    def before_fit(self) -> None:
        v, m = self.valid_name, self.metric[:3]
        self.columns = [(self.label, "epoch", "{:>6d}"), ("train_loss", "train_loss", "{:>11.4f}"),
                        (f"train_{m}", f"train_{self.metric}", "{:>10.2%}")]
        if self.learn.valid_dl is not None:
            self.columns += [(f"{v}_loss", f"{v}_loss", "{:>11.4f}"), (f"{v}_{m}", f"{v}_{self.metric}", "{:>10.2%}")]
        # an epoch's own time; for one-step "epochs" (full batch) the time since the start
        self.columns.append(("time", "time", "{:>7.2f}s") if self.label == "epoch"
                            else ("elapsed", "elapsed", "{:>8.2f}s"))
        header = "".join(f"{title:>{len(fmt.format(0 if 'd' in fmt else 0.0))}}" for title, _, fmt in self.columns)
        self._print(header)

    def _open_bar(self) -> None:
        if self.use_bars:
            try:
                from tqdm.auto import tqdm  # on use; in Jupyter, auto picks the notebook widget
            except ImportError:  # tqdm is optional (the [cli] extra): plain lines then
                self.use_bars = False
                return
            desc = f"{self.label} {self.learn.epoch + 1}/{self.learn.n_epochs} " \
                   f"{'train' if self.learn.training else self.valid_name}"
            self.bar = tqdm(total=len(self.learn.dl), desc=desc, leave=False, file=self.stream,
                            dynamic_ncols=True)

    before_train = before_validate = _open_bar

    def after_batch(self) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if self.learn.training and self.learn.iter % 20 == 0:
                self.bar.set_postfix(loss=f"{self.learn.loss:.4f}", refresh=False)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    after_train = after_validate = _close_bar

    def after_epoch(self) -> None:
        if _is_logged(self.learn, self.every):
            rec = self.learn.record
            self._print("".join(fmt.format(rec[key]) if key in rec else f"{'-':>{len(fmt.format(0.0))}}"
                                for _, key, fmt in self.columns))

    def after_fit(self) -> None:
        self._close_bar()

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


class History(Callback):
    """Writes ``metrics.csv`` and ``metrics.json`` (config + history so far) after logged epochs."""

    order = 20

    def __init__(self, write: Callable[[], None], every: int = 1):
        self.write, self.every = write, every

    def after_epoch(self) -> None:
        if _is_logged(self.learn, self.every):
            self.write()

    def after_fit(self) -> None:
        self.write()


class Checkpoint(Callback):
    """Keeps the state at the start of each epoch (for Ctrl-C and resume); writes ``last.npz``
    after logged epochs and ``best.npz`` when ``monitor`` improves (lower is better).

    ``save(name, state)`` writes a :meth:`Learner.state` dict; with ``rng`` (the training
    loader's generator) the state also carries ``rng``, so a resume replays the same batches.
    """

    order = 30

    def __init__(self, save: Callable[[str, dict], None], monitor: str = "valid_loss", every: int = 1,
                 rng: np.random.Generator | None = None):
        self.save, self.monitor, self.every, self.rng = save, monitor, every, rng
        self.best = math.inf
        self.epoch_start_state: dict | None = None
        self.best_state: dict | None = None

    def current_state(self) -> dict:
        """:meth:`Learner.state` and, with ``rng``, the loader generator's state."""
        state = self.learn.state()
        if self.rng is not None:
            state["rng"] = self.rng.bit_generator.state
        return state

    def before_epoch(self) -> None:
        # the state after_epoch kept is this epoch's start already: copy only when there is none
        if self.epoch_start_state is None or self.epoch_start_state["epoch"] != self.learn.epoch:
            self.epoch_start_state = self.current_state()

    def after_epoch(self) -> None:
        state = {**self.current_state(), "epoch": self.learn.epoch + 1}  # this epoch is done
        self.epoch_start_state = state  # also the next epoch's start, should Ctrl-C come now
        value = self.learn.record.get(self.monitor)
        if value is not None and value < self.best:
            # Kept in memory and written with the logged epochs: with --log-every 100 (the epfl
            # recipe's 1,000 full-batch steps) a write per improving step dominated the run.
            self.best = value
            self.best_state = state
        if _is_logged(self.learn, self.every):
            self.flush()
            self.save("last.npz", state)

    def after_fit(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Write ``best.npz`` if the best state changed since it was last written."""
        if self.best_state is not None:
            state, self.best_state = self.best_state, None
            self.save("best.npz", state)


class EarlyStopping(Callback):
    """Stops the fit when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    ``stopped`` says whether it did."""

    order = 40

    def __init__(self, monitor: str = "valid_loss", patience: int = 3, min_delta: float = 0.0):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best, self.wait, self.stopped = math.inf, 0, False

    def before_fit(self) -> None:
        """Count from the epochs already in ``learn.history`` (a resumed run), as an
        uninterrupted run would have; a run that had stopped already stops again at once."""
        self.best, self.wait, self.stopped = math.inf, 0, False
        for rec in getattr(self.learn, "history", []):
            self._update(rec.get(self.monitor))
        self._stop_if_exhausted()

    def _update(self, value) -> None:
        if value is None:
            return
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1

    def after_epoch(self) -> None:
        value = self.learn.record.get(self.monitor)
        if value is None:
            return
        self._update(value)
        self._stop_if_exhausted()

    def _stop_if_exhausted(self) -> None:
        if self.wait >= self.patience:
            self.stopped = True
            self.learn.stop_reason = (f"early stopping: {self.monitor} has not improved for "
                                      f"{self.patience} epochs (best {self.best:.4f})")
            raise CancelFitException()


class LRSchedule(Callback):
    """Sets ``opt.lr = schedule(train_step)`` before every training batch."""

    order = -10

    def __init__(self, schedule: Callable[[int], float]):
        self.schedule = schedule

    def before_batch(self) -> None:
        if self.learn.training:
            self.learn.opt.lr = self.schedule(self.learn.train_step)


class NonFiniteGuard(Callback):
    """Stops on a NaN/inf training loss, rolls the weights back to the start of the epoch
    (the last state known to train) and explains what to do."""

    order = -15

    def before_epoch(self) -> None:
        self.good_weights = self.learn.model.state_dict()

    def after_loss(self) -> None:
        if self.learn.training and not np.isfinite(self.learn.loss):
            learn = self.learn
            learn.model.load_state_dict(self.good_weights)
            learn.stop_reason = (
                f"non-finite loss ({learn.loss}) in epoch {learn.epoch + 1}, batch {learn.iter + 1}: "
                f"training diverged at lr {learn.opt.lr:g}; try a lower learning rate (--lr). "
                f"The weights were rolled back to the start of epoch {learn.epoch + 1}.")
            learn.diverged = True
            raise CancelFitException()
