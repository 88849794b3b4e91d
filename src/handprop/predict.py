"""``handprop predict``: a saved model's top classes for pictures of digits or ``.npy`` batches.

Pictures (PNG, JPEG) go through :func:`handprop.data.images.mnist_like`. A ``.npy`` batch is
taken as MNIST-format already (white on black, 28x28), only scaled: uint8 pixels are 0..255,
float pixels must lie in [0, 1] (a float batch in 0..255 is refused rather than guessed), any
other dtype is refused. Either way the model's training normalisation comes last.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import UsageError
from .data.images import SIZE, mnist_like, read_image

if TYPE_CHECKING:
    from .data.transforms import Normalize
    from .nn import Module

TOP = 3


@dataclass(frozen=True)
class Prediction:
    """The ``TOP`` most probable classes for one input, most probable first."""

    source: str  # the file, or ``batch.npy[i]``
    image: np.ndarray  # (28, 28) in [0, 1]: what the model saw, before normalisation
    classes: tuple[int, ...]
    names: tuple[str, ...]
    probabilities: tuple[float, ...]


def load_inputs(paths: Sequence[str | os.PathLike]) -> tuple[list[str], np.ndarray]:
    """(a name per image, their (N, 28, 28) float32 MNIST-like images) from picture files and
    ``.npy`` batches, in order."""
    names, images = [], []
    for path in map(Path, paths):
        if path.suffix.lower() == ".npy":
            batch = read_npy_batch(path)
            names += [f"{path}[{i}]" for i in range(len(batch))]
            images.append(batch)
        else:
            names.append(str(path))
            images.append(mnist_like(read_image(path), str(path))[None])
    return names, np.concatenate(images) if images else np.zeros((0, SIZE, SIZE), np.float32)


def read_npy_batch(path: str | os.PathLike) -> np.ndarray:
    """A ``.npy`` batch of MNIST-format images, (N, 28, 28) or (N, 784), as float32 in [0, 1]."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(f"{path}: not a readable .npy array ({e})") from None
    if x.ndim not in (2, 3) or x.shape[1:] not in ((SIZE, SIZE), (SIZE * SIZE,)) or len(x) == 0:
        raise UsageError(f"{path}: expected a batch of 28x28 images, shape (N, 28, 28) or (N, 784) with N >= 1, "
                         f"got {x.shape} (one image: x[None])")
    if x.dtype == np.uint8:
        return np.divide(x.reshape(-1, SIZE, SIZE), np.float32(255), dtype=np.float32)
    if x.dtype.kind != "f":
        raise UsageError(f"{path}: expected uint8 pixels (0..255) or float pixels (0..1), got {x.dtype}")
    if not np.all((x >= 0) & (x <= 1)):  # NaN fails both
        finite = x[np.isfinite(x)]
        found = f"values in [{finite.min():g}, {finite.max():g}]" if finite.size else "no finite values"
        raise UsageError(f"{path}: float pixels must lie in [0, 1], found {found}"
                         f"{' and NaN or infinity' if finite.size < x.size else ''} "
                         "(0..255 pixels: save them as uint8, or divide by 255)")
    return x.reshape(-1, SIZE, SIZE).astype(np.float32, copy=False)


def predict(model: Module, normalize: Normalize | None, images: np.ndarray, names: Sequence[str],
            class_names: Sequence[str] | None = None) -> list[Prediction]:
    """The top classes, by softmax probability of ``model``'s outputs, for (N, 28, 28) ``images``
    (shaped as the model's first layer takes them, then normalised by ``normalize``)."""
    from .nn.functional import log_softmax
    from .train.metrics import predict as outputs

    x = model_input(model, images)
    x = normalize(x) if normalize is not None else x
    dtype = next((p.dtype for p in model.parameters()), np.dtype(np.float32))
    probabilities = np.exp(log_softmax(outputs(model, x.astype(dtype, copy=False)).reshape(len(x), -1)))
    n_classes = probabilities.shape[1]
    names_of = list(class_names) if class_names is not None and len(class_names) == n_classes else None
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP]
    return [Prediction(source, image, tuple(int(c) for c in best),
                       tuple(names_of[c] if names_of else str(c) for c in best),
                       tuple(float(p) for p in probs[best]))
            for source, image, best, probs in zip(names, images, top, probabilities)]


def model_input(model: Module, images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) images in the shape ``model`` takes: (N, 784) for an MLP, (N, 1, 28, 28) for a
    model whose samples are (channels, height, width) with one channel."""
    from .nn import registry

    try:
        shape = registry.input_shape(model)
    except ValueError:  # the first layer cannot say: an MLP's flat pixels, its own error if not
        shape = (SIZE * SIZE,)
    n = len(images)
    if all(isinstance(d, int) for d in shape) and math.prod(shape) == SIZE * SIZE:
        return images.reshape(n, *shape)
    if len(shape) >= 2 and all(isinstance(d, str) for d in shape[-2:]) and all(d == 1 for d in shape[:-2]):
        return images.reshape(n, *shape[:-2], SIZE, SIZE)
    raise UsageError(f"the model takes samples of shape {tuple(shape)}; handprop predict feeds it 28x28 "
                     "grayscale images")
