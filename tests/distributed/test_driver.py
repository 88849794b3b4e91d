"""The driver on one process: what an interruption writes, and its flags."""
from __future__ import annotations

import json

import pytest

from handprop.distributed import train
from handprop.serialize import load_arrays
from handprop.train.callbacks import Recorder

FLAGS = ["--no-distributed", "--subset", "640", "--batch-size", "64", "--epochs", "3", "--quiet"]


@pytest.fixture
def interrupt_at(monkeypatch, data_root):
    """Ctrl-C before training step ``step`` (a handler on the Recorder's class, for this test only)."""
    monkeypatch.setenv("HANDPROP_DATA", str(data_root))

    def at(step: int) -> None:
        def before_batch(recorder) -> None:
            if recorder.learn.training and recorder.learn.train_step == step:
                raise KeyboardInterrupt
        monkeypatch.setattr(Recorder, "before_batch", before_batch, raising=False)
    return at


def saved(monkeypatch) -> list[str]:
    names: list[str] = []
    save = train.save_arrays
    monkeypatch.setattr(train, "save_arrays", lambda path, *a, **k: (names.append(path.name), save(path, *a, **k))[1])
    return names


def test_ctrl_c_in_epoch_1_writes_its_start(interrupt_at, monkeypatch, tmp_path, capsys):
    interrupt_at(5)
    writes = saved(monkeypatch)
    assert train.main([*FLAGS, "--out", str(tmp_path)]) == train.EXIT_INTERRUPTED
    assert writes == ["last.npz"]
    _, meta = load_arrays(tmp_path / "last.npz")
    assert (meta["epoch"], meta["train_step"]) == (0, 0)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["resume"] == (
        f"python -m handprop.distributed.train {' '.join(FLAGS)} --resume {tmp_path}")
    assert f"resume with: {metrics['resume']}" in capsys.readouterr().err


def test_ctrl_c_later_keeps_the_checkpoint_of_the_epoch_start_without_writing_it_again(interrupt_at, monkeypatch,
                                                                                        tmp_path):
    interrupt_at(15)  # epoch 2 (10 steps an epoch)
    writes = saved(monkeypatch)
    assert train.main([*FLAGS, "--out", str(tmp_path)]) == train.EXIT_INTERRUPTED
    assert writes == ["best.npz", "last.npz"], "epoch 1's end, and nothing after the interruption"
    _, meta = load_arrays(tmp_path / "last.npz")
    assert (meta["epoch"], meta["train_step"]) == (1, 10)


def test_resume_refuses_other_flags(interrupt_at, tmp_path, capsys):
    interrupt_at(15)
    train.main([*FLAGS, "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="trained with other --hidden, --lr; resume with the same flags"):
        train.main([*FLAGS, "--hidden", "20", "--lr", "0.3", "--resume", str(tmp_path)])
    with pytest.raises(SystemExit):
        train.main([*FLAGS, "--out", str(tmp_path / "other"), "--resume", str(tmp_path)])
    assert "--resume writes into the directory it resumes; drop --out" in capsys.readouterr().err


def test_bad_input_is_a_clear_error(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="--data-dir .*: the four MNIST IDX files are not there"):
        train.main(["--no-distributed", "--data-dir", str(tmp_path)])
    random = train.load_data(None, synthetic=True)
    random.source = "random: MNIST not found (set HANDPROP_DATA or pass --data-dir)"
    with monkeypatch.context() as m:  # no MNIST anywhere: the bench's loader falls back to random data
        m.setattr(train, "load_data", lambda data_dir, synthetic: random)
        with pytest.raises(ValueError, match=r"random: MNIST not found \(.*\); or pass --synthetic"):
            train.main(["--no-distributed"])
    with pytest.raises(ValueError, match="--subset 60000: there are only 50,000 training images"):
        train.main(["--no-distributed", "--synthetic", "--subset", "60000"])
    for flag, value in (("--momentum", "-0.5"), ("--seed", "-1"), ("--batch-size", "0")):
        with pytest.raises(SystemExit):
            train.main(["--no-distributed", "--synthetic", flag, value])
        assert f"argument {flag}" in capsys.readouterr().err
