"""MNIST and Fashion-MNIST: locate -> verify -> load, downloading only when no copy exists.

The folders searched are :func:`~handprop.data.search.search_paths`; when none holds the
files they are downloaded from the public mirrors into ``root`` if given, else the cache.
Every file is checked by the SHA-256 of its *decompressed* bytes, so a re-compressed or
gunzipped copy is accepted and a corrupted one is not.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .idx import read_idx
from .registry import DATASETS, DatasetSpec, dataset_spec
from .search import cache_dir, dataset_files, find_dataset, not_found_error, readable_file, search_paths

__all__ = ["DATASETS", "fashion_mnist", "load_dataset", "mnist"]  # DATASETS: the registry, as before

Split = tuple[np.ndarray, np.ndarray]


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True,
                 mirrors: list[str] | tuple[str, ...] | None = None, timeout: float = 30.0,
                 progress: bool | None = None) -> tuple[Split, Split]:
    """Load dataset ``name`` as ``(x_train, y_train), (x_test, y_test)``, like Keras.

    Images are uint8 ``(N, H, W)``, labels uint8 ``(N,)``. When no searched folder holds the
    files and ``download`` is true they are fetched from ``mirrors`` (default: the registry's)
    into ``root`` or the cache. Raises :class:`DatasetError` when the data cannot be found (its
    ``details`` list every folder searched and every remedy), or naming the file and the
    problem when it is unreadable or invalid.
    """
    spec = dataset_spec(name)
    folder = find_dataset(name, root)
    if folder is None:
        if not download:
            raise not_found_error(name, root)
        from .download import download_files  # urllib/http/ssl load only when downloading

        folder = search_paths(name, root)[0] if root is not None else cache_dir() / spec.name
        wanted = {f: sha for f, sha in spec.files.items() if not _has_readable(folder, f)}
        try:
            download_files(wanted, folder, spec.mirrors if mirrors is None else mirrors,
                           timeout=timeout, progress=progress)
        except DatasetError as exc:
            raise not_found_error(name, root, exc) from exc
    return _load_folder(spec, folder)


def mnist(root: str | os.PathLike | None = None, download: bool = True,
          **kwargs) -> tuple[Split, Split]:
    """MNIST digits: ``(x_train, y_train), (x_test, y_test)``, 60,000 + 10,000 uint8 28x28."""
    return load_dataset("mnist", root, download, **kwargs)


def fashion_mnist(root: str | os.PathLike | None = None, download: bool = True,
                  **kwargs) -> tuple[Split, Split]:
    """Fashion-MNIST (Zalando): same layout as :func:`mnist`, classes in ``DATASETS``."""
    return load_dataset("fashion-mnist", root, download, **kwargs)


def _has_readable(folder: Path, name: str) -> bool:
    """Whether ``folder`` holds a readable ``name`` (.gz or raw); an unreadable one is replaced by a download."""
    try:
        return readable_file(folder, name) is not None
    except DatasetError:
        return False


def _load_folder(spec: DatasetSpec, folder: Path) -> tuple[Split, Split]:
    """Read and verify the four files of ``folder``: checksums, dtype, rank, counts, labels."""
    try:
        paths = dataset_files(spec, folder)
    except DatasetError as exc:  # changed since the search found it
        raise DatasetError(f"{folder}: {exc}") from exc
    arrays = [read_idx(p, sha256=sha) for p, sha in zip(paths, spec.files.values())]
    for path, array, ndim in zip(paths, arrays, (3, 1, 3, 1)):
        if array.dtype != np.uint8 or array.ndim != ndim:
            raise DatasetError(f"{path}: expected uint8 data of rank {ndim} (magic 0x080{ndim}), "
                               f"found {array.dtype} of shape {array.shape}")
    splits = []
    for (img_path, lbl_path), (x, y) in zip((paths[:2], paths[2:]), (arrays[:2], arrays[2:])):
        if len(x) != len(y):
            raise DatasetError(f"{lbl_path}: image/label count mismatch: {len(y)} labels, "
                               f"but {img_path} has {len(x)} images")
        if y.size and y.max() >= len(spec.classes):
            raise DatasetError(f"{lbl_path}: label {y.max()} out of range for "
                               f"{len(spec.classes)} classes")
        splits.append((x, y))
    return splits[0], splits[1]
