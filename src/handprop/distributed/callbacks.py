"""The Learner callbacks of data-parallel training: gradient averaging, metrics over every
process, and the periodic check that the weights are still identical.

With these, a Learner on each process, fed by a :class:`~.sharding.ShardedLoader`, takes the
same steps as one process training on the global batches: the loss callbacks see is the
global batch's, the gradient the optimiser sees is the global batch's, and the epoch metrics
are computed over every example of the pass.

BatchNorm normalises with the statistics of each process's slice of the batch (as PyTorch DDP
without SyncBatchNorm); its running statistics are averaged over processes at the end of each
training pass, so every process evaluates and saves the same model.
"""
from __future__ import annotations

import time

import numpy as np

from ..train.callbacks import Recorder
from ..train.learner import Callback
from .buckets import BUCKET_BYTES, GradientBuckets
from .checksum import check_identical
from .communicator import Communicator
from .faults import StopSignals


def _loss_is_summed(learn) -> bool:
    """Whether the criterion sums over the batch (else it averages: a loss without a reduction
    attribute, such as an autograd TensorLoss, is taken as a mean, as the Recorder does)."""
    return getattr(learn.loss_func, "reduction", "mean") == "sum"


class DataParallel(Callback):
    """Makes every process's step the step of the global batch.

    - ``after_loss`` (training): one tiny Allreduce of (loss, batch size, stop flag). ``learn.loss``
      becomes the global batch's loss, so callbacks that act on it (the non-finite guard, a
      progress bar) decide the same on every process; a stop signal on any process stops all.
    - ``after_backward``: each flat gradient bucket is scaled by this slice's share of the global
      batch (``n_r / n`` for a mean-reduced loss, 1 for a summed one), then summed over processes
      with one Allreduce per bucket: the result is the single-process gradient of the global batch,
      even when the slices differ in size.
    - ``after_train``: floating-point buffers (BatchNorm running statistics) are averaged.

    ``allreduce_time`` accumulates the seconds spent in these Allreduce calls during training
    (for benchmarks: their share of the step).
    """

    order = -30  # before the Recorder and the non-finite guard read the loss

    def __init__(self, comm: Communicator, stop: StopSignals, bucket_bytes: int = BUCKET_BYTES):
        self.comm, self.stop, self.bucket_bytes = comm, stop, bucket_bytes
        self.buckets: GradientBuckets | None = None
        self.allreduce_time = 0.0
        self._share = 1.0
        self._sums = np.zeros(3)

    def before_fit(self) -> None:
        if self.buckets is None or self.buckets.params != self.learn.opt.params:
            self.buckets = GradientBuckets(self.learn.opt.params, self.bucket_bytes)

    def after_loss(self) -> None:
        learn = self.learn
        if not learn.training:
            return
        n, summed = len(learn.xb), _loss_is_summed(learn)
        sums = self._sums
        sums[:] = learn.loss * (1 if summed else n), n, self.stop.flag
        start = time.perf_counter()
        self.comm.allreduce(sums)
        self.allreduce_time += time.perf_counter() - start
        self.stop.stop_if_any(sums[2], f"before training step {learn.train_step + 1}")
        learn.local_loss = learn.loss
        learn.loss = float(sums[0] if summed else sums[0] / sums[1])
        self._share = 1.0 if summed else n / sums[1]

    def after_backward(self) -> None:
        assert self.buckets is not None, "DataParallel.before_fit did not run"
        self.buckets.rebind()
        if self._share != 1.0:
            for flat in self.buckets.buffers:
                np.multiply(flat, self._share, out=flat)
        start = time.perf_counter()
        for flat in self.buckets.buffers:
            self.comm.allreduce(flat)
        self.allreduce_time += time.perf_counter() - start

    def after_train(self) -> None:
        for _, buffer in self.learn.model.named_buffers():
            if np.issubdtype(buffer.dtype, np.floating):
                self.comm.allreduce(buffer)
                buffer /= self.comm.size


class CheckWeights(Callback):
    """Stops the run with RanksDivergedError, on every process, when the weights differ between
    processes: checked before training, every ``every`` steps, and at the end (with buffers)."""

    order = 50  # after the optimiser step and any callback that changes weights

    def __init__(self, comm: Communicator, every: int = 100):
        if not isinstance(every, int) or every <= 0:
            raise ValueError(f"CheckWeights: every must be a positive integer, got {every!r}")
        self.comm, self.every = comm, every

    def _check(self, when: str, with_buffers: bool) -> None:
        model = self.learn.model
        arrays = {name: p.data for name, p in model.named_parameters()}
        if with_buffers:
            arrays.update(model.named_buffers())
        check_identical(self.comm, arrays, when)

    def before_fit(self) -> None:
        self._check("before training", with_buffers=True)

    def after_step(self) -> None:
        step = self.learn.train_step
        if step % self.every == 0:
            # mid-epoch, BatchNorm running statistics differ by design (averaged after the pass)
            self._check(f"after step {step}", with_buffers=False)

    def after_fit(self) -> None:
        self._check(f"after training (step {self.learn.train_step})", with_buffers=True)


class DistributedRecorder(Recorder):
    """The Recorder, with each pass's loss, accuracy and count summed over processes (one
    Allreduce per pass), so ``learn.record`` holds the figures of the whole pass on every process."""

    def __init__(self, comm: Communicator, stop: StopSignals, valid_name: str = "valid"):
        super().__init__(valid_name)
        self.comm, self.stop = comm, stop

    def after_loss(self) -> None:
        learn = self.learn
        if not learn.training:
            super().after_loss()
            return
        # DataParallel made learn.loss the global batch's; this process counts its own slice
        global_loss, learn.loss = learn.loss, learn.local_loss
        try:
            super().after_loss()
        finally:
            learn.loss = global_loss

    def _finish(self, prefix: str) -> None:
        totals = self.comm.allreduce(np.array([self.total_loss, self.correct, self.count, self.stop.flag]))
        self.stop.stop_if_any(totals[3], f"after the {prefix} pass of epoch {self.learn.epoch + 1}")
        self.total_loss, self.correct, self.count = float(totals[0]), int(totals[1]), int(totals[2])
        super()._finish(prefix)
