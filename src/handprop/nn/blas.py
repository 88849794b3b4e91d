"""``out += a @ b`` in one GEMM call: how a layer adds its weight gradient without a temporary.

BLAS's GEMM computes ``C = alpha * A @ B + beta * C``; with beta = 1 it accumulates into C while
the product streams out of the multiply, so adding a gradient costs no more memory traffic than
writing it. NumPy does not expose beta, so :func:`matmul_add` calls the CBLAS ``?gemm`` of the
OpenBLAS that NumPy itself ships (the same library and thread pool ``np.matmul`` uses), found by
ctypes on first use. Where that library is not there (NumPy built against MKL, Accelerate or a
system BLAS), or for operands GEMM cannot take without a copy, it falls back to
``out += a @ b``: the same values, one temporary more.
"""
from __future__ import annotations

import ctypes
import glob
import os
from typing import Callable

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_UNSET = object()
_gemm: dict | None | object = _UNSET


def _load_numpy_cblas() -> dict | None:
    """{dtype: ctypes ?gemm} from NumPy's bundled scipy-openblas (64-bit ints), or None."""
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so"))):
        try:
            lib = ctypes.CDLL(path)
            found = {np.dtype(np.float32): lib.scipy_cblas_sgemm64_, np.dtype(np.float64): lib.scipy_cblas_dgemm64_}
        except (OSError, AttributeError):
            continue
        for dtype, fn in found.items():
            real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
            fn.restype = None
            fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                           ctypes.c_int64, real, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
                           ctypes.c_int64, real, ctypes.c_void_p, ctypes.c_int64]
        return found
    return None


def _operand(m: np.ndarray) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) of a 2-D matrix as row-major CBLAS sees it, or None."""
    if m.strides[1] == m.itemsize and m.strides[0] >= max(1, m.shape[1]) * m.itemsize:
        return _NO_TRANS, m.strides[0] // m.itemsize
    if m.strides[0] == m.itemsize and m.strides[1] >= max(1, m.shape[0]) * m.itemsize:
        return _TRANS, m.strides[1] // m.itemsize
    return None


def matmul_add(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out += a @ b`` for 2-D ``a`` (m, k), ``b`` (k, n) and a C-contiguous ``out`` (m, n)."""
    global _gemm
    if _gemm is _UNSET:
        _gemm = _load_numpy_cblas()
    gemm: Callable | None = _gemm.get(out.dtype) if _gemm else None  # type: ignore[union-attr]
    fa, fb = _operand(a), _operand(b)
    if (gemm is None or fa is None or fb is None or a.dtype != out.dtype or b.dtype != out.dtype
            or not out.flags.c_contiguous or out.shape != (a.shape[0], b.shape[1]) or a.shape[1] != b.shape[0]
            or 0 in a.shape or 0 in b.shape):
        out += a @ b
        return
    m, k, n = a.shape[0], a.shape[1], b.shape[1]
    gemm(_ROW_MAJOR, fa[0], fb[0], m, n, k, 1.0, a.ctypes.data, fa[1], b.ctypes.data, fb[1],
         1.0, out.ctypes.data, n)
