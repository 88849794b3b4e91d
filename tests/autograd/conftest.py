"""Helpers for the autograd tests: the PyTorch oracle and a float64 comparison."""
from __future__ import annotations

import os

import numpy as np
import pytest


def _import_torch():
    """PyTorch, or a skip; HANDPROP_REQUIRE_TORCH=1 turns a missing PyTorch into a failure."""
    try:
        import torch
    except ImportError:
        if os.environ.get("HANDPROP_REQUIRE_TORCH") == "1":
            pytest.fail("HANDPROP_REQUIRE_TORCH=1 but PyTorch is not installed")
        pytest.skip("PyTorch is not installed")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def torch():
    return _import_torch()


def rel_error(actual, expected) -> float:
    """max |actual - expected| / max |expected| (the 1e-6 criterion of the trust matrix)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}"
    scale = max(float(np.abs(e).max(initial=0.0)), 1e-300)
    return float(np.abs(a - e).max(initial=0.0)) / scale


@pytest.fixture(name="rel_error", scope="session")
def rel_error_fixture():
    return rel_error


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
