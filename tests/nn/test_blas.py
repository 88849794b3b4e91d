"""matmul_add: out += a @ b in one GEMM call, for every operand layout, with a plain fallback."""
from __future__ import annotations

import numpy as np
import pytest

from handprop.nn import blas


def _operands(rng, m, k, n, dtype, a_order, b_order):
    a = np.asarray(rng.standard_normal((m, k)), dtype=dtype, order=a_order)
    b = np.asarray(rng.standard_normal((k, n)), dtype=dtype, order=b_order)
    return a, b, rng.standard_normal((m, n)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_order,b_order", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F")])
@pytest.mark.parametrize("m,k,n", [(7, 5, 3), (50, 64, 784), (1, 4, 1), (3, 1, 2)])
def test_matmul_add_equals_out_plus_product(dtype, a_order, b_order, m, k, n):
    a, b, out = _operands(np.random.default_rng(m * k * n), m, k, n, dtype, a_order, b_order)
    expected = out.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)
    blas.matmul_add(a, b, out)
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)


def test_numpy_bundled_blas_is_found_here():
    """On this project's machines NumPy ships OpenBLAS, so the one-call path is the one tested."""
    blas.matmul_add(np.ones((2, 2)), np.ones((2, 2)), np.zeros((2, 2)))
    if blas._gemm is None:
        pytest.skip("NumPy's BLAS is not the bundled scipy-openblas: the fallback is used")
    assert np.dtype(np.float32) in blas._gemm


def test_strided_and_mixed_operands_take_the_fallback(monkeypatch):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 8))[::2, ::2]  # neither C- nor F-contiguous
    b = rng.standard_normal((4, 3)).astype(np.float32)
    out = np.zeros((3, 3))
    blas.matmul_add(a, b, out)
    np.testing.assert_allclose(out, a @ b)


def test_without_the_library_the_fallback_gives_the_same_values(monkeypatch):
    rng = np.random.default_rng(1)
    a, b, out = _operands(rng, 5, 4, 3, np.float32, "F", "C")
    expected = out + a @ b
    monkeypatch.setattr(blas, "_gemm", None)
    blas.matmul_add(a, b, out)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
