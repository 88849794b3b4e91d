"""The trainer tests' fixtures (real data for in-process runs, one shared finished run)."""
from train.conftest import hp_data, small_run  # noqa: F401
