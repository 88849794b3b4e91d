"""Gradients that live in a few flat buffers, so one collective call per buffer averages them.

Each Parameter's ``grad`` becomes a view into a flat "bucket" (PyTorch DDP's
``gradient_as_bucket_view``): backward adds into the bucket directly, and no copy packs or
unpacks the gradients around the Allreduce. ``Parameter.zero_grad`` fills in place, so the
views stay valid; a gradient buffer replaced by other code (``Module.to``) is noticed by
:meth:`GradientBuckets.rebind` and the buckets are rebuilt.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..nn.module import Parameter

#: Default bucket capacity (PyTorch DDP's). Each bucket is one Allreduce, and each Allreduce
#: waits for the slowest process: without overlap (docs/distributed.md) fewer, larger buckets
#: are faster. Measured on 784-1024-1024-10 (7.5 MB of gradients, 2 processes, a busy machine):
#: 1 bucket 3,500-5,000 samples/s, 3 buckets of <= 4 MiB 2,300-3,200. The cap bounds MPI's
#: temporary buffers for large models.
BUCKET_BYTES = 25 * 2**20


class GradientBuckets:
    """The gradients of ``params`` as views into flat buffers of at most ``bucket_bytes`` each
    (a parameter larger than that gets a bucket of its own); one dtype per bucket."""

    def __init__(self, params: Iterable[Parameter], bucket_bytes: int = BUCKET_BYTES):
        self.params = list(params)
        if not self.params:
            raise ValueError("GradientBuckets: got an empty parameter list")
        if not isinstance(bucket_bytes, (int, np.integer)) or bucket_bytes <= 0:
            raise ValueError(f"GradientBuckets: bucket_bytes must be a positive integer, got {bucket_bytes!r}")
        self.bucket_bytes = int(bucket_bytes)
        self.buffers: list[np.ndarray] = []
        self._views: list[np.ndarray] = []
        self._bind()

    def _layout(self) -> list[list[int]]:
        """Parameter indices per bucket, in parameter order."""
        groups: list[list[int]] = []
        used = 0
        for i, p in enumerate(self.params):
            last = self.params[groups[-1][0]] if groups else None
            if last is None or last.dtype != p.dtype or used + p.grad.nbytes > self.bucket_bytes:
                groups.append([])
                used = 0
            groups[-1].append(i)
            used += p.grad.nbytes
        return groups

    def _bind(self) -> None:
        """Allocate the buckets, copy the current gradients in, and make each ``p.grad`` a view."""
        self.buffers, views = [], [np.empty(0)] * len(self.params)
        for group in self._layout():
            params = [self.params[i] for i in group]
            flat = np.empty(sum(p.grad.size for p in params), dtype=params[0].dtype)
            offset = 0
            for i, p in zip(group, params):
                view = flat[offset:offset + p.grad.size].reshape(p.grad.shape)
                view[...] = p.grad
                p.grad = view
                views[i] = view
                offset += p.grad.size
            self.buffers.append(flat)
        self._views = views

    def rebind(self) -> None:
        """Rebuild the buckets if any gradient buffer was replaced since they were made."""
        if any(p.grad is not view for p, view in zip(self.params, self._views)):
            self._bind()

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.buffers)

    def __repr__(self) -> str:
        return f"GradientBuckets({len(self.params)} parameters in {len(self.buffers)} buckets, {self.nbytes:,} bytes)"
