"""handprop summary / lr-find / init-study through the command line: what each prints and writes."""
from __future__ import annotations

import re

import pytest

from handprop.cli import main


def test_summary_of_the_train_flags_counts_the_mlp(capsys):
    assert main(["summary", "--hidden", "64"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"total\s+50,890\s+50,816", out), out  # 784*64+64 + 64*10+10 params; 784*64 + 64*10 MACs


def test_summary_refuses_a_missing_file_in_one_line(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "none.npz")]) == 2
    assert "no such model file" in capsys.readouterr().err


@pytest.mark.slow
def test_lr_find_prints_both_suggestions_and_writes_the_plot(hp_data, tmp_path, capsys):
    code = main(["lr-find", "--subset", "3000", "--num-it", "40", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "steepest descent" in out and "valley" in out
    assert (tmp_path / "lr_find.png").stat().st_size > 10_000


@pytest.fixture
def hp_data(monkeypatch, data_root):
    monkeypatch.setenv("HANDPROP_DATA", str(data_root))
    return data_root
