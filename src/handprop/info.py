"""``handprop info``: versions, BLAS and threads, and where each dataset was found."""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .data import DATASETS, find_dataset
from .data.search import remedies, search_report
from .threads import info_lines


def blas_info() -> str:
    """The BLAS NumPy was built with, from its build configuration."""
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy without mode="dicts"
        return "unknown"


def dataset_lines(name: str, data_dir: Path | None = None) -> list[str]:
    """``info``'s lines for one dataset: where it was found, every folder searched and why it
    was skipped, and the remedies when it is missing. A problem that stops the search itself
    (no home folder, a bad ``~user``) is reported on the dataset's line, never raised."""
    try:
        found = find_dataset(name, data_dir)
        searched = search_report(name, data_dir)
        fixes = [] if found else ["    to add a copy, any of:", *(f"      - {r}" for r in remedies(name))]
    except (OSError, ValueError) as exc:  # DatasetError is a ValueError
        return [f"  {name}: cannot search: {exc}"]
    where = "in --data-dir" if data_dir is not None else "locally"
    status = found or f"not found {where} (train and evaluate download it unless --offline)"
    return [f"  {name}: {status}", *(f"    {line}" for line in searched), *fixes]


def print_info(data_dir: Path | None = None) -> int:
    """Print versions, BLAS, threads and the dataset search (for ``--data-dir`` if given)."""
    try:
        import torch
        torch_version = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        torch_version = "not installed"
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
               if k in os.environ}
    print(f"handprop   {__version__}")
    print(f"python     {platform.python_version()} ({sys.executable})")
    print(f"numpy      {np.__version__}, BLAS {blas_info()}")
    print(f"torch      {torch_version}")
    print(f"cpus       {os.cpu_count()}; thread settings: {threads or 'none (BLAS default)'}")
    print("\n".join(info_lines()))
    print("datasets (search order; * = the copy used):")
    for name in DATASETS:
        print("\n".join(dataset_lines(name, data_dir)))
    return 0
