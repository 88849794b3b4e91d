"""The datasets handprop knows: their four IDX files, checksums, mirrors and classes."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import DatasetError


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


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of ``name``; a :class:`DatasetError` listing the valid names otherwise."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
