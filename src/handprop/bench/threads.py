"""BLAS thread control: how many threads NumPy's BLAS uses, and limiting it (threadpoolctl)."""
from __future__ import annotations

import os
from typing import Any

_LIMITER: Any = None  # keeps a threadpoolctl limit alive for the whole run


def blas_threads() -> tuple[int, str]:
    """(threads NumPy's BLAS uses, how that was found)."""
    import numpy as np  # noqa: F401  (loads the BLAS so threadpoolctl can see it)
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            i = blas[0]
            return int(i["num_threads"]), f"threadpoolctl: {i.get('internal_api')} {i.get('version')}"
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").strip().isdigit():
            return int(os.environ[var]), f"${var}"
    return os.cpu_count() or 1, "cpu count (no threadpoolctl, no thread variables)"


def set_blas_threads(n: int) -> bool:
    """Limit NumPy's BLAS to ``n`` threads for the rest of the process (needs threadpoolctl)."""
    global _LIMITER
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    _LIMITER = threadpool_limits(limits=n, user_api="blas")
    return True
