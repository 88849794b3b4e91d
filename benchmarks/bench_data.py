"""Time loading + normalising the 60,000 MNIST training images (target: under 1 s).

Each run reads and verifies the IDX files (gunzip + SHA-256 of the decompressed bytes),
converts to float32 in [0, 1], flattens, fits Normalize on the images and normalises them in
place. Prints the median of several runs.

    HANDPROP_DATA=../shared/data python benchmarks/bench_data.py [--data-dir DIR] [--runs 7]
"""
from __future__ import annotations

import argparse
import statistics
import time

from handprop.data import DATASETS, Normalize, find_dataset, load_dataset, read_idx, to_float_flat


def train_images_only(folder) -> None:
    """Read + verify train-images, float32-flatten, fit and apply Normalize."""
    name = "train-images-idx3-ubyte"
    x = to_float_flat(read_idx(folder / f"{name}.gz", sha256=DATASETS["mnist"].files[name]))
    Normalize().fit(x)(x, out=x)


def whole_dataset(folder) -> None:
    """``mnist()`` (all four files, verified) then the same for the training images."""
    (x_train, _), _ = load_dataset("mnist", root=folder, download=False)
    x = to_float_flat(x_train)
    Normalize().fit(x)(x, out=x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding the four MNIST IDX files")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    folder = find_dataset("mnist", args.data_dir)
    if folder is None:
        raise SystemExit("MNIST not found: pass --data-dir or set HANDPROP_DATA")
    for job in (train_images_only, whole_dataset):
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            job(folder)
            times.append(time.perf_counter() - start)
        print(f"{job.__name__:18s} median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}, {args.runs} runs)  [{folder}]")


if __name__ == "__main__":
    main()
