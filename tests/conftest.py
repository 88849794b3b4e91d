"""Shared test fixtures: PyTorch as the oracle, the real-data location."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REQUIRE_TORCH = os.environ.get("HANDPROP_REQUIRE_TORCH") == "1"


def import_torch():
    """PyTorch, or a skip; with HANDPROP_REQUIRE_TORCH=1 a missing PyTorch is a failure."""
    try:
        import torch
    except ImportError:
        if REQUIRE_TORCH:
            pytest.fail("HANDPROP_REQUIRE_TORCH=1 but PyTorch is not installed (pip install torch==2.13.0)")
        pytest.skip("PyTorch is not installed")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def torch():
    return import_torch()


def rel_error(actual, expected) -> float:
    """max |actual - expected| / max |expected|: the 1e-6 criterion of the trust tests."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    scale = max(float(np.abs(e).max(initial=0.0)), 1e-300)
    return float(np.abs(a - e).max(initial=0.0)) / scale


@pytest.fixture(scope="session")
def data_root() -> Path:
    """$HANDPROP_DATA (CI sets it to ../shared/data), else the shared folder beside the repo."""
    root = Path(os.environ.get("HANDPROP_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not (root / "mnist").is_dir():
        pytest.fail(f"real MNIST not found under {root}/mnist; set HANDPROP_DATA")
    return root
