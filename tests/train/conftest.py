"""Fixtures for the trainer tests: the real-data environment and one shared small run."""
from __future__ import annotations

import pytest

from .helpers import small_run_once


@pytest.fixture
def hp_data(monkeypatch, data_root):
    """In-process runs find the real MNIST through $HANDPROP_DATA."""
    monkeypatch.setenv("HANDPROP_DATA", str(data_root))
    return data_root


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, data_root):
    """A finished 2-epoch run: (run directory, stdout, stderr)."""
    return small_run_once(tmp_path_factory, data_root)
