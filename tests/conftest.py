"""Shared test fixtures: PyTorch as the oracle, the real-data location."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from engine_helpers import rel_error

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


@pytest.fixture(name="rel_error", scope="session")
def rel_error_fixture():
    """max |actual - expected| / max |expected|: the 1e-6 criterion of the trust tests."""
    return rel_error


@pytest.fixture(scope="session")
def data_root() -> Path:
    """$HANDPROP_DATA (CI sets it to ../shared/data), else the shared folder beside the repo."""
    root = Path(os.environ.get("HANDPROP_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not (root / "mnist").is_dir():
        pytest.fail(f"real MNIST not found under {root}/mnist; set HANDPROP_DATA")
    return root
