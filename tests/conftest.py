"""Shared test fixtures: PyTorch as the oracle, the real-data location."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from engine_helpers import rel_error

REQUIRE_TORCH = os.environ.get("HANDPROP_REQUIRE_TORCH") == "1"
REQUIRE_DATA = os.environ.get("HANDPROP_REQUIRE_DATA") == "1"
#: The shared data beside the repository (../shared/data), used when HANDPROP_DATA is unset.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
def data_root(tmp_path_factory) -> Path:
    """A folder holding ``mnist/`` with the real MNIST, found by the library's own search
    ($HANDPROP_DATA, which CI sets to ../shared/data, then the user cache), else ../shared/data
    when HANDPROP_DATA is unset. Missing data is a skip; with HANDPROP_REQUIRE_DATA=1 a failure."""
    from handprop.data import find_dataset, search_paths

    roots = [None, *([] if os.environ.get("HANDPROP_DATA") else [SHARED_DATA])]  # None: the search
    folder = next((found for root in roots if (found := find_dataset("mnist", root))), None)
    if folder is None:
        searched = [place for root in roots for place in search_paths("mnist", root)]
        reason = (f"real MNIST not found in {', '.join(map(str, searched))}; "
                  "set HANDPROP_DATA to a folder holding mnist/ (see `handprop info`)")
        if REQUIRE_DATA:
            pytest.fail(f"HANDPROP_REQUIRE_DATA=1 but {reason}")
        pytest.skip(reason)
    if folder.name == "mnist":
        return folder.parent
    # HANDPROP_DATA may name the dataset's folder itself, whatever its name; the tests want <root>/mnist.
    root = tmp_path_factory.mktemp("data")
    (root / "mnist").symlink_to(folder, target_is_directory=True)
    return root
