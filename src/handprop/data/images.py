"""Any picture of a digit as an MNIST input: what ``handprop predict`` feeds a model.

MNIST's digits are white on black, their ink scaled into a 20x20 box (aspect kept, anti-aliased)
and placed in a 28x28 field with the centre of mass in the middle. :func:`mnist_like` repeats
that on a grayscale picture: invert when the background is light, stretch the background to 0
and the strongest ink to 1, crop to the ink, then scale and place it by one linear resampling
per axis (two matrix products, no loop over pixels). Pillow (the ``cli`` extra) only decodes and
encodes files, in :func:`read_image` and :func:`save_png`.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..extras import require
from ..serialize import atomic_write

SIZE, BOX = 28, 20
#: Where MNIST's centre of mass sits, in pixel units from the top-left corner: pixel index 14.0
#: (the mean over the training set is 13.996 rows, 14.007 columns), whose centre is 14.5.
CENTRE = 14.5
#: Ink is what is brighter than this, after the stretch to [0, 1]; fainter is paper or noise.
INK = 0.2
#: A picture whose ink is less than this brighter than its background is blank.
MIN_CONTRAST = 0.1


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The picture in ``path`` (PNG, JPEG, anything Pillow reads) as float32 grayscale in [0, 1],
    (H, W): turned upright as its EXIF says, transparency composited on white (a digit drawn on a
    transparent canvas), 16-bit grayscale kept in full."""
    pil = require("PIL.Image", "cli", "handprop predict (reading images)", package="Pillow")
    ops = require("PIL.ImageOps", "cli", "handprop predict (reading images)", package="Pillow")
    try:
        with pil.open(path) as img:
            img = ops.exif_transpose(img)
            if img.mode.startswith("I"):  # 16-bit PNG: "L" would clip it to white
                return np.divide(np.asarray(img), np.float32(65535), dtype=np.float32)
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                img = pil.alpha_composite(pil.new("RGBA", img.size, "white"), img.convert("RGBA"))
            return np.divide(np.asarray(img.convert("L")), np.float32(255), dtype=np.float32)
    except (OSError, ValueError, pil.DecompressionBombError) as e:
        raise UsageError(f"{path}: not a readable image ({e})") from None


def mnist_like(gray: np.ndarray, where: str = "image") -> np.ndarray:
    """A (28, 28) float32 image in [0, 1], white digit on black, from grayscale ``gray`` (H, W)
    in [0, 1]; a ValueError naming ``where`` when there is no digit to see."""
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise UsageError(f"{where}: expected a 2-d grayscale image, got shape {gray.shape}")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark ink on light paper: make it MNIST's light ink on black
        gray, background = 1 - gray, 1 - background
    top = float(gray.max())
    if top - background < MIN_CONTRAST:
        raise UsageError(f"{where}: no digit found (the image is blank: ink and background differ by "
                         f"{top - background:.3f})")
    ink = np.clip((gray - background) / (top - background), 0, 1)
    ink[ink < INK] = 0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = BOX / max(ink.shape)
    mass = ink.sum()
    # the centre of mass, in pixel units (pixel i spans [i, i + 1)), lands on CENTRE
    centre_row = (ink.sum(axis=1) @ (np.arange(ink.shape[0]) + 0.5)) / mass
    centre_col = (ink.sum(axis=0) @ (np.arange(ink.shape[1]) + 0.5)) / mass
    out = (_resampling(ink.shape[0], scale, CENTRE - centre_row * scale) @ ink
           @ _resampling(ink.shape[1], scale, CENTRE - centre_col * scale).T)
    out /= out.max()
    return np.clip(out, 0, 1, out=out)


def _resampling(n_in: int, scale: float, shift: float) -> np.ndarray:
    """(28, n_in) weights of the linear map ``out = in * scale + shift`` (pixel units): a triangle
    filter around each output pixel's centre, widened by 1/scale when shrinking (anti-aliasing).
    Each row is normalised over an unbounded input, so what lies beyond the crop counts as black."""
    support = max(1.0, 1.0 / scale)
    source = (np.arange(SIZE) + 0.5 - shift) / scale  # each output centre, in input pixel units
    reach = math.ceil(support) + 1
    near = np.floor(source)[:, None] + np.arange(-reach, reach + 1) + 0.5  # every centre within reach
    total = _triangle(near - source[:, None], support).sum(axis=1, keepdims=True)
    return (_triangle(np.arange(n_in) + 0.5 - source[:, None], support) / total).astype(np.float32)


def _triangle(distance: np.ndarray, support: float) -> np.ndarray:
    return np.maximum(0.0, 1 - np.abs(distance) / support)


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a float image in [0, 1] as an 8-bit grayscale PNG, atomically."""
    pil = require("PIL.Image", "cli", "handprop predict --show (writing images)", package="Pillow")
    buffer = io.BytesIO()
    pil.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    path = Path(path)
    with atomic_write(path) as f:
        f.write(buffer.getvalue())
    return path
