"""nn.special.erf: against math.erf to float64 rounding, and PyTorch; dtypes, edge values, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

from handprop.nn.special import erf

_math_erf = np.vectorize(math.erf, otypes=[np.float64])


def max_rel_error(actual, expected) -> float:
    """Elementwise max |actual - expected| / |expected| (every value checked on its own scale)."""
    expected = np.asarray(expected, dtype=np.float64)
    err = np.abs(np.asarray(actual, dtype=np.float64) - expected)
    return float((err / np.maximum(np.abs(expected), np.finfo(np.float64).tiny)).max())


def test_dense_grid_matches_math_erf_to_float64_rounding():
    x = np.linspace(-7.0, 7.0, 140_001)  # step 1e-4, through all three pieces
    assert max_rel_error(erf(x), _math_erf(x)) <= 1e-14


def test_random_points_on_every_scale_match_math_erf():
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], 20_000) * 10.0 ** rng.uniform(-300, 1.5, 20_000)
    assert max_rel_error(erf(x), _math_erf(x)) <= 1e-14


@pytest.mark.parametrize("edge", [0.5, 4.0, 6.0])
def test_around_the_piece_boundaries(edge):
    """The pieces meet at 0.5 and 4 (and erf is exactly 1 from 6 on): no jump at the seams."""
    x = np.concatenate([np.nextafter(edge, 0.0) - np.arange(5) * 1e-12, [edge],
                        np.nextafter(edge, 10.0) + np.arange(5) * 1e-12])
    x = np.concatenate([x, -x])
    assert max_rel_error(erf(x), _math_erf(x)) <= 1e-14


def test_subnormal_inputs_are_exact_to_first_order():
    x = np.array([5e-324, 1e-310, 1e-200, -1e-20])
    np.testing.assert_allclose(erf(x), 2 / math.sqrt(math.pi) * x, rtol=1e-15)


def test_odd_symmetry_is_exact_and_erf_is_monotone():
    x = np.linspace(0.0, 6.5, 65_001)
    np.testing.assert_array_equal(erf(-x), -erf(x))
    assert np.all(np.diff(erf(x)) >= 0)


def test_infinities_nan_signed_zero_and_huge_values_without_warnings():
    x = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 1e308, -1e300, 27.0, -6.0])
    with np.errstate(all="raise"):  # no overflow or invalid operation on the way
        out = erf(x)
    np.testing.assert_array_equal(out, [1.0, -1.0, np.nan, -0.0, 0.0, 1.0, -1.0, 1.0, -1.0])
    assert np.signbit(out[3]) and not np.signbit(out[4])


@pytest.mark.parametrize("dtype, tol", [(np.float32, 4e-7), (np.float64, 1e-14)])
def test_float_dtypes_are_kept(dtype, tol):
    x = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(dtype) * 3
    out = erf(x)
    assert out.dtype == dtype and out.shape == x.shape
    assert max_rel_error(out, _math_erf(x.astype(np.float64))) <= tol


def test_float16_is_computed_without_overflow_and_returned_as_float16():
    x = np.array([-4.0, -1.0, 0.25, 3.0, 4.5], dtype=np.float16)
    with np.errstate(all="raise"):
        out = erf(x)
    assert out.dtype == np.float16
    assert max_rel_error(out, _math_erf(x.astype(np.float64))) <= 1e-3


def test_integers_python_numbers_and_shapes_follow_numpy_ufuncs():
    assert erf(np.array([0, 1, -2], dtype=np.int8)).dtype == np.float64
    assert erf(0.5).shape == () and erf(0.5) == pytest.approx(math.erf(0.5), rel=1e-15)
    assert erf([True, False]).dtype == np.float64
    assert erf(np.zeros((0, 3), np.float32)).shape == (0, 3)


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array(["1.0"]), np.array([None])])
def test_non_real_input_is_refused(bad):
    with pytest.raises(ValueError, match=r"erf: expected real numbers, got an array of dtype"):
        erf(bad)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-15), (np.float32, 1e-6)])
def test_matches_torch_erf(torch, dtype, tol):
    x = (np.random.default_rng(2).standard_normal(10_000) * 3).astype(dtype)
    expected = torch.erf(torch.from_numpy(x)).numpy()
    assert np.abs(erf(x) - expected).max() <= tol
