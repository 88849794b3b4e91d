"""Special functions NumPy lacks, vectorised over arrays: the error function ``erf``.

erf(x) = 2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt, which the exact GELU needs. It is
computed with W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev
approximations for the error function", Math. Comp. 23 (1969), 631-637), whose coefficients
(as in his SPECFUN routine CALERF) make each piece accurate to float64 rounding:

* |x| <= 0.5:      erf(x)  = x R1(x^2)
* 0.5 < |x| <= 4:  erfc(x) = exp(-x^2) R2(|x|)
* |x| > 4:         erfc(x) = exp(-x^2) / |x| * (1/sqrt(pi) - R3(1/x^2) / x^2)

with erf = 1 - erfc, and erf(-x) = -erf(x).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["erf"]

# Each R is (numerator, denominator), coefficients from the highest power down (monic denominators).
_R1 = ((1.85777706184603153e-1, 3.16112374387056560e0, 1.13864154151050156e2,
        3.77485237685302021e2, 3.20937758913846947e3),
       (1.0, 2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
        2.84423683343917062e3))
_R2 = ((2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0,
        6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2,
        1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3),
       (1.0, 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
        1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
        3.43936767414372164e3, 1.23033935480374942e3))
_R3 = ((1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
        1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4),
       (1.0, 2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1,
        6.05183413124413191e-2, 2.33520497626869185e-3))
_ONE_OVER_SQRT_PI = 1 / math.sqrt(math.pi)
_SATURATION = 6.0  # erfc(6) = 2e-17 < float64 eps / 2: erf rounds to exactly 1 from here on


def erf(x) -> np.ndarray:
    """The error function, elementwise: an array of ``x``'s shape, odd, erf(+-inf) = +-1, nan -> nan.

    float32 stays float32 and float64 stays float64 (float16 is computed in float32, where the
    polynomials cannot overflow); integers and Python numbers give float64, as NumPy's ufuncs.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"erf: expected real numbers, got an array of dtype {x.dtype}")
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    x = x.astype(np.promote_types(dtype, np.float32), copy=False)
    out = np.abs(x, out=np.empty_like(x))  # |x|, then overwritten piece by piece with erf(|x|)
    np.minimum(out, _SATURATION, out=out)  # also keeps |x|^2 finite for huge |x| and inf
    near, tail = out <= 0.5, out > 4
    middle = ~(near | tail)  # nan lands here and stays nan

    t = out[near]
    out[near] = t * _rational(_R1, t * t)
    t = out[middle]
    out[middle] = 1 - np.exp(-t * t) * _rational(_R2, t)
    t = out[tail]
    z = 1 / (t * t)
    out[tail] = 1 - np.exp(-t * t) / t * (_ONE_OVER_SQRT_PI - z * _rational(_R3, z))
    return np.copysign(out, x, out=out).astype(dtype, copy=False)


def _rational(r: tuple[tuple[float, ...], tuple[float, ...]], t: np.ndarray) -> np.ndarray:
    """numerator(t) / denominator(t), both by Horner's rule in ``t``'s dtype."""
    numerator, denominator = r
    return _horner(numerator, t) / _horner(denominator, t)


def _horner(coefficients: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    """The polynomial with ``coefficients`` (highest power first) at ``t``: c0 t^n + ... + cn."""
    acc = coefficients[0] * t + coefficients[1]
    for c in coefficients[2:]:  # a loop over the few coefficients; each step is vectorised
        acc *= t
        acc += c
    return acc
