"""MNIST and Fashion-MNIST: locate -> verify -> load, downloading only when no copy exists.

Search order (first folder holding all four IDX files wins):
explicit ``root`` (alone, when given) -> ``$HANDPROP_DATA/<name>/`` -> the user cache
``$XDG_CACHE_HOME/handprop/<name>/`` (default ``~/.cache``) -> system copies such as Debian's
``/usr/share/datasets/fashion-mnist`` -> download from the public mirrors into ``root`` if
given, else the cache. Every file is checked by the SHA-256 of its *decompressed* bytes, so a
re-compressed or gunzipped copy is accepted and a corrupted one is not.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .idx import read_idx

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is: its four IDX files, how to verify and where to fetch them.

    ``files`` maps each file name (without ``.gz``), in the order train images, train labels,
    test images, test labels, to the SHA-256 of its decompressed bytes.
    """

    name: str
    files: dict[str, str]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()
    debian_package: str | None = None


_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files=dict(zip(_MNIST_FILES, (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ))),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        classes=tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files=dict(zip(_MNIST_FILES, (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ))),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Bag", "Sneaker", "Ankle boot"),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        debian_package="dataset-fashion-mnist",
    ),
}


def cache_dir() -> Path:
    """The user cache for downloads: ``$XDG_CACHE_HOME/handprop`` (default ``~/.cache/handprop``)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "handprop"


def search_paths(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for dataset ``name``, in order.

    An explicit ``root`` replaces the search: ``[root, root/<name>]`` (the folder itself, or a
    parent holding ``<name>/`` like ``$HANDPROP_DATA``).
    """
    spec = _spec(name)
    if root is not None:
        root = Path(root).expanduser().absolute()
        return [root, root / spec.name]
    paths = []
    if env := os.environ.get("HANDPROP_DATA"):
        paths.append(Path(env).expanduser().absolute() / spec.name)
    paths.append(cache_dir() / spec.name)
    paths.extend(Path(d) for d in spec.system_dirs)
    return paths


def find_dataset(name: str, root: str | os.PathLike | None = None) -> Path | None:
    """The first folder of :func:`search_paths` holding all four files (unverified), or None."""
    spec = _spec(name)
    return next((p for p in search_paths(name, root) if not _missing(spec, p)), None)


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True,
                 mirrors: list[str] | tuple[str, ...] | None = None, timeout: float = 30.0,
                 progress: bool | None = None) -> tuple[Split, Split]:
    """Load dataset ``name`` as ``(x_train, y_train), (x_test, y_test)``, like Keras.

    Images are uint8 ``(N, H, W)``, labels uint8 ``(N,)``. When no searched folder holds the
    files and ``download`` is true they are fetched from ``mirrors`` (default: the registry's)
    into ``root`` or the cache. Raises :class:`DatasetError` naming every folder searched and
    every remedy when the data cannot be found, or the file and problem when it is invalid.
    """
    spec = _spec(name)
    candidates = search_paths(name, root)
    folder = find_dataset(name, root)
    if folder is None:
        if not download:
            raise DatasetError(_not_found(spec, candidates, root is not None,
                                          "disabled (download=False)"))
        from .download import download_files  # urllib/http/ssl load only when downloading

        folder = candidates[0] if root is not None else cache_dir() / spec.name
        missing = {f: sha for f, sha in spec.files.items() if f in _missing(spec, folder)}
        try:
            download_files(missing, folder, spec.mirrors if mirrors is None else mirrors,
                           timeout=timeout, progress=progress)
        except DatasetError as exc:
            raise DatasetError(_not_found(spec, candidates, root is not None, str(exc))) from exc
    return _load_folder(spec, folder)


def mnist(root: str | os.PathLike | None = None, download: bool = True,
          **kwargs) -> tuple[Split, Split]:
    """MNIST digits: ``(x_train, y_train), (x_test, y_test)``, 60,000 + 10,000 uint8 28x28."""
    return load_dataset("mnist", root, download, **kwargs)


def fashion_mnist(root: str | os.PathLike | None = None, download: bool = True,
                  **kwargs) -> tuple[Split, Split]:
    """Fashion-MNIST (Zalando): same layout as :func:`mnist`, classes in ``DATASETS``."""
    return load_dataset("fashion-mnist", root, download, **kwargs)


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def _file(folder: Path, name: str) -> Path | None:
    """``name.gz`` or ``name`` in ``folder``, whichever exists (gzip preferred)."""
    return next((p for p in (folder / f"{name}.gz", folder / name) if p.is_file()), None)


def _missing(spec: DatasetSpec, folder: Path) -> list[str]:
    return [f for f in spec.files if _file(folder, f) is None]


def _load_folder(spec: DatasetSpec, folder: Path) -> tuple[Split, Split]:
    """Read and verify the four files of ``folder``: checksums, dtype, rank, counts, labels."""
    paths = [_file(folder, f) for f in spec.files]
    if None in paths:
        raise DatasetError(f"{folder}: missing {', '.join(_missing(spec, folder))} (.gz or raw)")
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


def _not_found(spec: DatasetSpec, searched: list[Path], explicit_root: bool, download: str) -> str:
    """The no-data message: every folder searched, why it failed, and every remedy."""
    lines = [f"{spec.name}: dataset not found. Searched, in order:"]
    for p in searched:
        missing = _missing(spec, p) if p.is_dir() else None
        why = "no such folder" if missing is None else f"missing {', '.join(missing)}"
        lines.append(f"  {p}  ({why})")
    if explicit_root:
        lines.append("  (an explicit root replaces the search of $HANDPROP_DATA, the cache "
                     "and system folders)")
    elif not os.environ.get("HANDPROP_DATA"):
        lines.append(f"  $HANDPROP_DATA/{spec.name}/  (HANDPROP_DATA is not set)")
    lines.append(f"Download: {download}")
    files = ", ".join(f"{f}.gz" for f in spec.files)
    lines += [
        "Remedies:",
        f"  - pass the folder holding {files}: `--data-dir DIR` (CLI) or root=DIR",
        f"  - set HANDPROP_DATA to a folder containing {spec.name}/",
        f"  - copy the files into {cache_dir() / spec.name}",
        f"  - allow downloading (download=True) with network access to one of: {', '.join(spec.mirrors)}",
    ]
    if spec.debian_package:
        lines.append(f"  - install Debian's package: `sudo apt install {spec.debian_package}` "
                     f"(provides {', '.join(spec.system_dirs)})")
    return "\n".join(lines)
