"""Helpers for the autograd tests (the `torch` and `rel_error` fixtures come from tests/conftest.py)."""
from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import rel_error


@pytest.fixture(scope="session")
def close():
    """``close(actual, expected, tol, what)``: assert rel_error <= tol with a readable message."""
    def check(actual, expected, tol: float = 1e-10, what: str = "value") -> None:
        err = rel_error(actual, expected)
        assert err <= tol, f"{what}: relative error {err:.3e} > {tol:.0e}"
    return check


@pytest.fixture
def rng():
    return np.random.default_rng(0)
