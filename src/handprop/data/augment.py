"""Data augmentation on whole batches of images: vectorised NumPy, no loop over samples or pixels.

:class:`Augment` is the training-time transform ``handprop train --augment`` gives the training
loader: random crop with padding, random erasing and (for pictures of things, never for digits)
a horizontal flip, each drawn per image from one seeded generator. :func:`tta_views` are the
copies ``--tta`` averages the logits of at test time.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .._random import resolve_rng


def _images(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` as (N, C, H, W) images of ``shape`` (C, H, W): a view of flat (N, C*H*W) rows too."""
    if x.shape[1:] != shape and x.shape[1:] != (int(np.prod(shape)),):
        raise ValueError(f"expected images of shape (N, {', '.join(map(str, shape))}) or flattened, got {x.shape}")
    return x.reshape(len(x), *shape)


def shift(x: np.ndarray, dy: np.ndarray, dx: np.ndarray, pad: int, fill: float) -> np.ndarray:
    """Each image ``x[i]`` (N, C, H, W) moved by (``dy[i]``, ``dx[i]``) pixels, |d| <= ``pad``,
    uncovered pixels set to ``fill``: a crop of the image padded by ``pad`` on every side."""
    n, c, h, w = x.shape
    padded = np.full((n, c, h + 2 * pad, w + 2 * pad), fill, dtype=x.dtype)
    padded[:, :, pad:pad + h, pad:pad + w] = x
    rows = (pad - np.asarray(dy))[:, None, None] + np.arange(h)[None, :, None]
    cols = (pad - np.asarray(dx))[:, None, None] + np.arange(w)[None, None, :]
    return np.ascontiguousarray(padded[np.arange(n)[:, None, None], :, rows, cols].transpose(0, 3, 1, 2))


class Augment:
    """The training-time augmentation of a batch, every draw from ``rng``.

    ``pad``: random crop of the image zero-padded (``fill``: the value a blank pixel has) by
    ``pad`` pixels; ``erase``: the probability of erasing a random rectangle (up to half the
    height and width) with noise of the batch's mean and std, clipped to its range; ``flip``:
    mirror half the images left-right (for clothes, not digits: a mirrored 2 is no digit).
    ``shape`` (C, H, W) is the image shape, so flat (N, C*H*W) batches are augmented too.
    """

    def __init__(self, shape: tuple[int, int, int], rng: np.random.Generator | int | None = None, pad: int = 2,
                 erase: float = 0.5, flip: bool = False, fill: float = 0.0):
        if not isinstance(pad, int) or isinstance(pad, bool) or pad < 0:
            raise ValueError(f"Augment: pad must be a non-negative integer, got {pad!r}")
        if not 0 <= erase <= 1:
            raise ValueError(f"Augment: erase must be a probability in [0, 1], got {erase!r}")
        self.shape, self.pad, self.erase, self.flip, self.fill = tuple(shape), pad, erase, flip, float(fill)
        self.rng = resolve_rng(rng)

    def __call__(self, xb: np.ndarray) -> np.ndarray:
        x = _images(xb, self.shape)
        n, _, h, w = x.shape
        rng = self.rng
        if self.pad:
            x = shift(x, *rng.integers(-self.pad, self.pad + 1, size=(2, n)), self.pad, self.fill)
        else:
            x = x.copy()
        if self.flip:
            mirrored = rng.random(n) < 0.5
            x[mirrored] = x[mirrored, :, :, ::-1]
        if self.erase:
            x = self._erase(x, rng.random(n) < self.erase)
        return x.reshape(xb.shape)

    def _erase(self, x: np.ndarray, which: np.ndarray) -> np.ndarray:
        """A random rectangle of each image in ``which`` replaced by clipped noise."""
        n, c, h, w = x.shape
        rng = self.rng
        eh, ew = rng.integers(1, h // 2 + 1, size=n), rng.integers(1, w // 2 + 1, size=n)
        top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
        noise = rng.standard_normal(x.shape, dtype=np.float32) * x.std() + x.mean()
        rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
        inside = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
                  & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]) & which[:, None, None])
        np.clip(noise, x.min(), x.max(), out=noise)
        return np.where(inside[:, None], noise.astype(x.dtype), x)

    def __repr__(self) -> str:
        return f"Augment(pad={self.pad}, erase={self.erase}, flip={self.flip})"


def tta_views(shape: tuple[int, int, int], flip: bool, fill: float = 0.0) -> list[Callable[[np.ndarray], np.ndarray]]:
    """The test-time copies whose logits ``--tta`` averages: each image and its mirror image
    (``flip``), or each image and its four one-pixel shifts (digits), as batches of ``x``'s shape."""
    def view(f):
        return lambda xb: f(_images(xb, shape)).reshape(xb.shape)
    if flip:
        return [lambda xb: xb, view(lambda x: np.ascontiguousarray(x[:, :, :, ::-1]))]
    moves = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    return [lambda xb: xb] + [view(lambda x, m=m: shift(x, np.full(len(x), m[0]), np.full(len(x), m[1]), 1, fill))
                              for m in moves]
