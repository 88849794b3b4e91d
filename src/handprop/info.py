"""``handprop info``: versions, BLAS and threads, and where each dataset was found."""
from __future__ import annotations

import os
import platform
import sys

import numpy as np

from . import __version__
from .data import DATASETS, find_dataset, search_paths


def blas_info() -> str:
    """The BLAS NumPy was built with, from its build configuration."""
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy without mode="dicts"
        return "unknown"


def print_info() -> int:
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
    print("datasets (search order; * = found):")
    for name in DATASETS:
        found = find_dataset(name)
        print(f"  {name}: {found if found else 'not found locally (downloaded on first use)'}")
        for place in search_paths(name):
            print(f"    {'*' if found and place == found else ' '} {place}")
    return 0
