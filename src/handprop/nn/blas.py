"""Two BLAS calls NumPy does not expose: ``out += a @ b`` and ``y += alpha * x`` in one pass.

BLAS's GEMM computes ``C = alpha * A @ B + beta * C``; with beta = 1 it accumulates into C while
the product streams out of the multiply, so adding a weight gradient costs no more memory
traffic than writing it (:func:`matmul_add`). AXPY computes ``y += alpha * x`` in one pass where
NumPy's ``y -= lr * x`` makes two and a temporary: the SGD update (:func:`axpy`), twice as fast
on a 1024 x 1024 weight. Both call the CBLAS routines of the OpenBLAS that NumPy itself ships
(the same library and thread pool ``np.matmul`` uses), found by ctypes on first use. Where that
library is not there (NumPy built against MKL, Accelerate or a system BLAS), or for operands
BLAS cannot take without a copy, they fall back to NumPy: the same values, one temporary more.
So they do for small arrays, where the ctypes call (~6 us for GEMM: three pointers and fourteen
converted arguments) costs more than the pass it saves (:data:`MIN_GEMM_ELEMENTS`,
:data:`MIN_AXPY_ELEMENTS`).
"""
from __future__ import annotations

import ctypes
import glob
import os
from typing import Callable

import numpy as np

#: Outputs smaller than this take ``out += a @ b`` (1 thread, k = 64: 64x64 5 us against 10 us for
#: the ctypes call, 128x128 26 against 27, 512x256 154 against 136; k = 512 the same crossing).
MIN_GEMM_ELEMENTS = 32768
#: Arrays smaller than this take ``y += alpha * x`` (784 x 50: 8.6 us against 6.7 for saxpy).
MIN_AXPY_ELEMENTS = 16384
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_UNSET = object()
_cblas: dict | None | object = _UNSET


def _load_numpy_cblas() -> dict[tuple[str, np.dtype], Callable] | None:
    """{("gemm" | "axpy", dtype): ctypes routine} from NumPy's bundled scipy-openblas (64-bit
    ints), or None."""
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so"))):
        try:
            lib = ctypes.CDLL(path)
            found = {(name, np.dtype(dtype)): getattr(lib, f"scipy_cblas_{prefix}{name}64_")
                     for name in ("gemm", "axpy") for prefix, dtype in (("s", np.float32), ("d", np.float64))}
        except (OSError, AttributeError):
            continue
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        for (name, dtype), fn in found.items():
            real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
            fn.restype = None
            fn.argtypes = ([ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, i64, i64, real, ptr, i64, ptr, i64, real,
                            ptr, i64] if name == "gemm" else [i64, real, ptr, i64, ptr, i64])
        return found
    return None


def _routine(name: str, dtype: np.dtype) -> Callable | None:
    global _cblas
    if _cblas is _UNSET:
        _cblas = _load_numpy_cblas()
    return _cblas.get((name, dtype)) if _cblas else None  # type: ignore[union-attr]


def _operand(m: np.ndarray) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) of a 2-D matrix as row-major CBLAS sees it, or None."""
    if m.strides[1] == m.itemsize and m.strides[0] >= max(1, m.shape[1]) * m.itemsize:
        return _NO_TRANS, m.strides[0] // m.itemsize
    if m.strides[0] == m.itemsize and m.strides[1] >= max(1, m.shape[0]) * m.itemsize:
        return _TRANS, m.strides[1] // m.itemsize
    return None


def _address(m: np.ndarray) -> int:
    """The address of ``m``'s first element. Through the buffer protocol when ``m`` (or its
    transpose) is a writable contiguous block: 0.3 us against 1.2 us for ``m.ctypes.data``,
    which a step pays for every operand of every BLAS call."""
    block = m if m.flags.c_contiguous else m.T
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(block))
    except (TypeError, ValueError, BufferError):  # read-only, or rows with a gap between them
        return m.ctypes.data


def matmul_add(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out += a @ b`` for 2-D ``a`` (m, k), ``b`` (k, n) and a C-contiguous ``out`` (m, n)."""
    if out.size < MIN_GEMM_ELEMENTS:
        out += a @ b
        return
    gemm = _routine("gemm", out.dtype)
    fa, fb = _operand(a), _operand(b)
    if (gemm is None or fa is None or fb is None or a.dtype != out.dtype or b.dtype != out.dtype
            or not out.flags.c_contiguous or out.shape != (a.shape[0], b.shape[1]) or a.shape[1] != b.shape[0]
            or 0 in a.shape or 0 in b.shape):
        out += a @ b
        return
    m, k, n = a.shape[0], a.shape[1], b.shape[1]
    gemm(_ROW_MAJOR, fa[0], fb[0], m, n, k, 1.0, _address(a), fa[1], _address(b), fb[1], 1.0, _address(out), n)


def axpy(alpha: float, x: np.ndarray, y: np.ndarray) -> None:
    """``y += alpha * x`` in place, for ``x`` of ``y``'s shape."""
    fn = _routine("axpy", y.dtype) if y.size >= MIN_AXPY_ELEMENTS else None
    if (fn is None or x.dtype != y.dtype or x.shape != y.shape or not x.flags.c_contiguous
            or not y.flags.c_contiguous):
        y += alpha * x
        return
    fn(y.size, alpha, _address(x), 1, _address(y), 1)
