"""The training loop: short on purpose; everything else plugs in as a callback on named events.

Events (fast.ai's names), in order::

    before_fit
      before_epoch
        before_train     before_batch after_pred after_loss after_backward after_step after_batch ...  after_train
        before_validate  before_batch after_pred after_loss after_batch ...                            after_validate
      after_epoch
    after_fit

``learn.training`` says which pass is running. A callback raises CancelBatchException,
CancelTrainException, CancelValidException, CancelEpochException or CancelFitException to skip
the rest of that scope; ``after_cancel_<scope>`` then ``after_<scope>`` follow. An exception
from an outer scope skips the ``after_`` events of the scopes it leaves (as in fast.ai).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..nn.loss import Loss
from ..nn.module import Module
from ..optim.optimizer import Optimizer

if TYPE_CHECKING:
    from .lr_finder import LRFindResult


class CancelBatchException(Exception):
    """Skip the rest of this batch (no step)."""


class CancelTrainException(Exception):
    """Skip the rest of this epoch's training pass."""


class CancelValidException(Exception):
    """Skip the rest of this epoch's validation pass."""


class CancelEpochException(Exception):
    """Skip the rest of this epoch (both passes)."""


class CancelFitException(Exception):
    """Stop training; ``after_fit`` still runs."""


class Callback:
    """Base class: define methods named after events; ``order`` sorts callbacks (low first)."""

    order = 0
    learn: "Learner"


class Learner:
    """``Learner(model, loss, opt, train_dl, valid_dl, callbacks).fit(epochs)``.

    Attributes callbacks read and write: ``epoch``, ``iter`` (batch index in the pass),
    ``train_step`` (global training step), ``xb``, ``yb``, ``preds``, ``loss`` (float),
    ``training``, ``dl``, ``n_epochs``.
    """

    def __init__(self, model: Module, loss: Loss, opt: Optimizer, train_dl: Iterable,
                 valid_dl: Iterable | None = None, callbacks: Iterable[Callback] = ()):
        self.model, self.loss_func, self.opt = model, loss, opt
        self.train_dl, self.valid_dl = train_dl, valid_dl
        self.callbacks: list[Callback] = []
        self._handlers: dict[str, list[Callable[[], None]]] = {}  # event -> bound methods
        self.epoch, self.train_step, self.start_epoch = 0, 0, 0
        for cb in callbacks:
            self.add_callback(cb)

    def add_callback(self, cb: Callback) -> Learner:
        cb.learn = self
        self.callbacks.append(cb)
        self.callbacks.sort(key=lambda c: c.order)
        self._handlers = {}
        return self

    def callback(self, event: str) -> None:
        """Run every callback's ``event`` method, in ``order`` (looked up once per event name)."""
        handlers = self._handlers.get(event)
        if handlers is None:
            handlers = self._handlers[event] = [m for cb in self.callbacks
                                                if (m := getattr(cb, event, None)) is not None]
        for method in handlers:
            method()

    def _with_events(self, body: Callable[[], None], name: str, cancel: type[Exception]) -> None:
        """``before_<name>``, ``body()``, ``after_<name>``; ``cancel`` raised by any of the first two
        (a ``before_`` callback may cancel too) runs ``after_cancel_<name>`` and skips the rest."""
        try:
            self.callback(f"before_{name}")
            body()
        except cancel:
            self.callback(f"after_cancel_{name}")
        self.callback(f"after_{name}")

    def fit(self, epochs: int, start_epoch: int | None = None) -> Learner:
        """Train for epochs ``start_epoch`` (default: where the last fit or a resume left off) .. epochs-1."""
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
        if start_epoch is not None:
            self.start_epoch = start_epoch
        self.n_epochs = epochs
        self._with_events(self._all_epochs, "fit", CancelFitException)
        return self

    def _all_epochs(self) -> None:
        for self.epoch in range(self.start_epoch, self.n_epochs):
            self._with_events(self._one_epoch, "epoch", CancelEpochException)
            self.start_epoch = self.epoch + 1

    def _one_epoch(self) -> None:
        self._one_pass(training=True)
        if self.valid_dl is not None:
            self._one_pass(training=False)

    def _one_pass(self, training: bool) -> None:
        self.training = training
        self.model.train(training)
        self.dl = self.train_dl if training else self.valid_dl
        scope, cancel = ("train", CancelTrainException) if training else ("validate", CancelValidException)
        self._with_events(self._all_batches, scope, cancel)

    def _all_batches(self) -> None:
        for self.iter, (self.xb, self.yb) in enumerate(self.dl):
            self._with_events(self._one_batch, "batch", CancelBatchException)

    def _one_batch(self) -> None:
        self.preds = self.model(self.xb)
        self.callback("after_pred")
        self.loss = self.loss_func(self.preds, self.yb)
        self.callback("after_loss")
        if not self.training:
            return
        try:
            self.model.backward(self.loss_func.backward(), input_grad=False)
            self.callback("after_backward")
            self.opt.step()
            self.train_step += 1
            self.callback("after_step")
        finally:  # a cancelled batch's gradient must not leak into the next step
            self.opt.zero_grad()

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
                stop_factor: float = 3.0) -> LRFindResult:
        """The learning-rate range test on this model, optimiser and training data; weights and
        optimiser state are restored afterwards (see :mod:`handprop.train.lr_finder`)."""
        from .lr_finder import lr_find  # (it imports this module)
        return lr_find(self, start_lr, end_lr, num_it, stop_factor)

    def plot_curves(self) -> Any:
        """Loss and accuracy per epoch from the Recorder's history, as a ``matplotlib.figure.Figure``
        (a notebook cell shows it inline; ``fig.savefig(path)`` writes it)."""
        from .callbacks import Recorder  # (it imports this module)
        from .plots import curves_figure

        recorder = next((cb for cb in self.callbacks if isinstance(cb, Recorder)), None)
        if recorder is None:
            raise ValueError("plot_curves: no Recorder among the callbacks, so there is no history to plot")
        return curves_figure(getattr(self, "history", []), recorder.valid_name)

    def state(self) -> dict:
        """Copies of everything a resume needs: model and optimiser state, position in training."""
        return {"model": self.model.state_dict(),
                "opt": self.opt.state_dict(),
                "epoch": self.start_epoch, "train_step": self.train_step}

    def load_state(self, state: dict) -> None:
        """Restore :meth:`state`; the next ``fit`` continues from ``state['epoch']``."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.start_epoch = self.epoch = int(state["epoch"])
        self.train_step = int(state["train_step"])
