"""The README's promises: its Python example runs as written, its test command is CI's."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_the_test_command_is_the_one_ci_runs():
    test_command = next(b.strip() for b in _blocks("bash") if "pytest" in b)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_the_train_command_installs_and_trains():
    train_command = next(b.strip() for b in _blocks("bash") if "handprop train" in b)
    assert "pip install -e" in train_command and train_command.endswith("handprop train")


@pytest.mark.slow
def test_python_example_runs_as_written(data_root, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HANDPROP_DATA", str(data_root))
    monkeypatch.chdir(tmp_path)  # the example saves a file in the current folder
    (example,) = _blocks("python")
    exec(compile(example, "README.md", "exec"), {})
    out = capsys.readouterr().out
    accuracy = float(re.search(r"valid accuracy ([\d.]+)%", out).group(1))
    assert accuracy > 95.0
    assert "gradcheck" in out and " NO" not in out
    assert (tmp_path / "mlp.safetensors").is_file()
