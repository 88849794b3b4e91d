"""matmul_add (out += a @ b in one GEMM call) and axpy (y += alpha * x in one pass), for every
operand layout, with a plain fallback."""
from __future__ import annotations

import numpy as np
import pytest

from handprop.nn import blas


def _operands(rng, m, k, n, dtype, a_order, b_order):
    a = np.asarray(rng.standard_normal((m, k)), dtype=dtype, order=a_order)
    b = np.asarray(rng.standard_normal((k, n)), dtype=dtype, order=b_order)
    return a, b, rng.standard_normal((m, n)).astype(dtype)


@pytest.fixture(params=["blas", "default"])
def min_gemm(request, monkeypatch):
    """Every size through the one-call paths (thresholds 0), then with the default thresholds."""
    if request.param == "blas":
        monkeypatch.setattr(blas, "MIN_GEMM_ELEMENTS", 0)
        monkeypatch.setattr(blas, "MIN_AXPY_ELEMENTS", 0)
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_order,b_order", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F")])
@pytest.mark.parametrize("m,k,n", [(7, 5, 3), (50, 64, 784), (300, 64, 300), (1, 4, 1), (3, 1, 2)])
def test_matmul_add_equals_out_plus_product(dtype, a_order, b_order, m, k, n, min_gemm):
    a, b, out = _operands(np.random.default_rng(m * k * n), m, k, n, dtype, a_order, b_order)
    expected = out.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)
    blas.matmul_add(a, b, out)
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)


def test_numpy_bundled_blas_is_found_here():
    """On this project's machines NumPy ships OpenBLAS, so the one-call path is the one tested."""
    found = blas._load_numpy_cblas()
    if found is None:
        pytest.skip("NumPy's BLAS is not the bundled scipy-openblas: the fallback is used")
    assert {(name, np.dtype(t)) for name in ("gemm", "axpy") for t in (np.float32, np.float64)} <= found.keys()


@pytest.mark.parametrize("rows,calls", [(0, 1), (-1, 0), (-100, 0)])  # rows more than the threshold's
def test_only_outputs_of_at_least_min_gemm_elements_take_the_gemm_call(monkeypatch, rows, calls):
    made = _spy_on(monkeypatch, "gemm")
    n = 128
    m = blas.MIN_GEMM_ELEMENTS // n + rows
    a, b, out = _operands(np.random.default_rng(0), m, 64, n, np.float32, "F", "C")
    expected = out + a @ b
    blas.matmul_add(a, b, out)
    assert len(made) == calls and (m * n >= blas.MIN_GEMM_ELEMENTS) == bool(calls)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_strided_and_mixed_operands_take_the_fallback(min_gemm):
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
    monkeypatch.setattr(blas, "_cblas", None)
    monkeypatch.setattr(blas, "MIN_GEMM_ELEMENTS", 0)
    blas.matmul_add(a, b, out)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def _spy_on(monkeypatch, name: str) -> list:
    """A list that grows by one for every float32 ``name`` ("gemm", "axpy") BLAS call."""
    found = blas._load_numpy_cblas()
    if found is None:
        pytest.skip("NumPy's BLAS is not the bundled scipy-openblas")
    made, routine = [], found[(name, np.dtype(np.float32))]
    monkeypatch.setattr(blas, "_cblas", {**found, (name, np.dtype(np.float32)): lambda *a: made.append(routine(*a))})
    return made


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 5), (300, 300), (40000,), (0, 3)])
def test_axpy_adds_alpha_times_x(dtype, shape, min_gemm):
    rng = np.random.default_rng(len(shape))
    x, y = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    expected = y.astype(np.float64) - 0.25 * x.astype(np.float64)
    blas.axpy(-0.25, x, y)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, expected, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)


@pytest.mark.parametrize("size,calls", [(blas.MIN_AXPY_ELEMENTS, 1), (blas.MIN_AXPY_ELEMENTS - 1, 0)])
def test_only_arrays_of_at_least_min_axpy_elements_take_the_axpy_call(monkeypatch, size, calls):
    made = _spy_on(monkeypatch, "axpy")
    x, y = np.ones(size, np.float32), np.full(size, 2.0, np.float32)
    blas.axpy(0.5, x, y)
    assert len(made) == calls
    np.testing.assert_array_equal(y, 2.5)


def test_axpy_with_a_strided_x_takes_the_fallback(monkeypatch):
    made = _spy_on(monkeypatch, "axpy")
    x = np.arange(2 * 40000, dtype=np.float32)[::2]
    y = np.zeros(40000, np.float32)
    blas.axpy(1.0, x, y)
    assert made == [] and np.array_equal(y, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_read_only_and_row_gap_operands_take_the_gemm_call_with_the_right_addresses(monkeypatch, dtype):
    """Operands whose address the buffer protocol refuses (read-only, rows with a gap: a column
    slice) are still passed to BLAS, at their own first element."""
    monkeypatch.setattr(blas, "MIN_GEMM_ELEMENTS", 0)
    rng = np.random.default_rng(3)
    big = rng.standard_normal((9, 12)).astype(dtype)
    a = big[1:, 2:7]                      # (8, 5), C rows 12 apart: a leading dimension of 12
    b = rng.standard_normal((4, 5)).astype(dtype).T  # (5, 4), transposed
    b.flags.writeable = False
    out = rng.standard_normal((8, 4)).astype(dtype)
    expected = out + a @ b
    blas.matmul_add(a, b, out)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
