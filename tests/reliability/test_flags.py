"""Every ``handprop train`` flag either takes effect or is refused with one line naming the flags.

Each flag is checked to reach the TrainConfig here (the table must cover every flag the parser
has, so a new flag needs its line); ``tests/train/test_run_create.py`` checks that each config
setting reaches what ``Run.create`` builds.
"""
from __future__ import annotations

import pytest

from handprop import cli
from handprop.errors import UsageError
from handprop.train.config import TrainConfig, settings
from train.helpers import read_metrics, run_child, run_main

#: flag -> (arguments using it, config fields they must produce).
FLAG_EFFECTS = {
    "--recipe": (["--recipe", "fastai"], {"recipe": "fastai", "hidden": (50,), "lr": 0.5, "shuffle": False}),
    "--dataset": (["--dataset", "fashion-mnist"], {"dataset": "fashion-mnist"}),
    "--data-dir": (["--data-dir", "/data/idx"], {"data_dir": "/data/idx"}),
    "--offline": (["--offline"], {"download": False}),
    "--model": (["--model", "resnet"], {"model": "resnet"}),
    "--hidden": (["--hidden", "32", "--hidden", "16"], {"hidden": (32, 16)}),
    "--activation": (["--activation", "leaky"], {"activation": "leaky"}),
    "--loss": (["--loss", "mse"], {"loss": "mse"}),
    "--init": (["--init", "xavier_uniform"], {"init": "xavier_uniform"}),
    "--init-std": (["--init", "normal", "--init-std", "0.2"], {"init": "normal", "init_std": 0.2}),
    "--optimizer": (["--optimizer", "sgd"], {"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0}),
    "--lr": (["--lr", "0.01"], {"lr": 0.01}),
    "--momentum": (["--optimizer", "sgd", "--momentum", "0.9"], {"momentum": 0.9}),
    "--nesterov": (["--optimizer", "sgd", "--momentum", "0.9", "--nesterov"], {"nesterov": True}),
    "--no-nesterov": (["--optimizer", "sgd", "--momentum", "0.9", "--no-nesterov"], {"nesterov": False}),
    "--weight-decay": (["--weight-decay", "0.2"], {"weight_decay": 0.2}),
    "--schedule": (["--schedule", "cosine"], {"schedule": "cosine"}),
    "--batch-size": (["--batch-size", "32"], {"batch_size": 32}),
    "--full-batch": (["--full-batch"], {"batch_size": None, "shuffle": False}),
    "--shuffle": (["--recipe", "fastai", "--shuffle"], {"shuffle": True}),
    "--no-shuffle": (["--no-shuffle"], {"shuffle": False}),
    "--epochs": (["--epochs", "2"], {"epochs": 2}),
    "--subset": (["--subset", "100"], {"subset": 100}),
    "--valid": (["--valid", "0"], {"valid": 0}),
    "--no-normalize": (["--no-normalize"], {"normalize": False}),
    "--augment": (["--augment"], {"augment": True}),
    "--no-augment": (["--model", "cnn", "--no-augment"], {"augment": False}),
    "--tta": (["--tta"], {"tta": True}),
    "--no-tta": (["--model", "cnn", "--no-tta"], {"tta": False}),
    "--seed": (["--seed", "7"], {"seed": 7}),
    "--patience": (["--patience", "2"], {"patience": 2}),
    "--stats": (["--stats"], {"stats": True}),
    "--log-every": (["--log-every", "3"], {"log_every": 3}),
    "--full": (["--recipe", "epfl", "--full"], {"subset": None, "test_subset": None, "recipe": "epfl"}),
}

#: Flags that are not settings, tested where they act: the run directory (tests/test_cli.py,
#: tests/reliability/test_rundir.py: --out, --overwrite), --resume (tests/train/test_resume.py),
#: --quiet (tests/test_cli.py), --threads (tests/reliability/test_resume_rules.py),
#: --[no-]distributed (tests/distributed/: test_environment.py and, under mpirun, test_mpirun.py).
NOT_SETTINGS = {"-h", "--help", "--out", "--overwrite", "--resume", "--threads", "--quiet", "--distributed",
                "--no-distributed"}


@pytest.fixture
def hp_data(monkeypatch, data_root):
    """In-process runs find the real MNIST through $HANDPROP_DATA."""
    monkeypatch.setenv("HANDPROP_DATA", str(data_root))
    return data_root


def _train_parser():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return sub.choices["train"]


def _config(args: list[str]) -> TrainConfig:
    return cli.train_config(cli.build_parser().parse_args(["train", *args]))


def test_the_table_covers_every_train_flag():
    options = {o for action in _train_parser()._actions for o in action.option_strings}
    assert options - NOT_SETTINGS == set(FLAG_EFFECTS)


@pytest.mark.parametrize("flag", FLAG_EFFECTS)
def test_each_flag_reaches_the_config(flag):
    args, expected = FLAG_EFFECTS[flag]
    config = _config(args)
    assert {k: getattr(config, k) for k in expected} == expected
    assert config != TrainConfig.create(), f"{flag} changed nothing"


def test_without_flags_the_config_is_the_default():
    assert _config([]) == TrainConfig()


@pytest.mark.parametrize("args, needles", [
    (["--full-batch", "--batch-size", "64"], ["--full-batch", "--batch-size"]),
    (["--batch-size", "64", "--full-batch"], ["--full-batch", "--batch-size"]),
    (["--optimizer", "adam", "--momentum", "0.9"], ["--momentum 0.9", "--optimizer adam"]),
    (["--optimizer", "adamw", "--momentum", "0.5"], ["--momentum 0.5", "--optimizer adamw"]),
    (["--momentum", "0.9"], ["--momentum 0.9", "--optimizer adamw"]),
    (["--optimizer", "adam", "--nesterov"], ["--nesterov", "--optimizer adam"]),
    (["--optimizer", "sgd", "--nesterov"], ["--nesterov", "--momentum"]),
    (["--init-std", "0.1"], ["--init-std 0.1", "--init kaiming_normal"]),
    (["--init", "xavier_normal", "--init-std", "0.1"], ["--init-std 0.1", "--init xavier_normal"]),
    (["--full-batch", "--shuffle"], ["--shuffle", "--full-batch"]),
    (["--recipe", "epfl", "--shuffle"], ["--shuffle", "--full-batch"]),
    (["--valid", "0", "--patience", "3"], ["--patience 3", "--valid"]),
    (["--recipe", "epfl", "--patience", "3"], ["--patience 3", "--valid"]),
    (["--recipe", "epfl", "--full", "--subset", "10"], ["--full", "--subset"]),
    (["--recipe", "fastai", "--full"], ["--full", "--recipe epfl"]),
    (["--subset", "55000"], ["--subset 55000", "50,000 training images", "--valid 10000"]),
    (["--valid", "70000"], ["--valid 70000", "leaves no training images"]),
])
def test_a_flag_that_would_be_ignored_is_refused_naming_both_flags(args, needles, hp_data, tmp_path):
    code, stdout, err = run_main(["train", *args, "--out", tmp_path / "run"])
    assert code == 2 and "Traceback" not in err and stdout == ""
    assert len(err.splitlines()) == 1 and err.startswith("handprop train: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    leaked = [name for name in settings() if "_" in name and name in err]
    assert not leaked, f"config field names in a command-line message: {leaked}"
    assert not (tmp_path / "run").exists()


def test_refusal_from_a_real_process(data_root, tmp_path):
    proc = run_child(["train", "--optimizer", "adam", "--momentum", "0.9", "--out", tmp_path / "run"], data_root)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("handprop train: error: --momentum 0.9 applies to --optimizer sgd only "
                           "(got --optimizer adam)\n")


def test_epfl_recipe_with_batch_size_64_trains_with_batch_64(hp_data, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_main(["train", "--recipe", "epfl", "--batch-size", "64", "--epochs", "1",
                                  "--out", out])
    assert code == 0, err
    assert "batch 64" in stdout and "full batch" not in stdout
    m = read_metrics(out)
    assert m["config"]["batch_size"] == 64 and m["config"]["shuffle"] is True
    assert m["config"]["loss"] == "mse" and m["config"]["recipe"] == "epfl"
    assert len(m["history"]) == 1 and m["epochs_done"] == 1


@pytest.mark.parametrize("message, fields, typed, expected", [
    ("batch_size=None and shuffle=True", ["batch_size", "shuffle"], {}, "--full-batch and --shuffle"),
    ("shuffle=False", ["shuffle"], {}, "--no-shuffle"),
    ("only epochs, data_dir and download may change", ["epochs", "data_dir", "download"], {},
     "only --epochs, --data-dir and --offline may change"),
    ("drop batch_size", ["batch_size"], {"batch_size": "--full-batch"}, "drop --full-batch"),
    ("lr=0.1/N is too high.", ["lr"], {}, "--lr 0.1/N is too high."),
    ("patience needs a validation split (valid > 0)", ["patience", "valid"], {},
     "--patience needs a validation split (--valid > 0)"),
    ("target_on=0.9 with loss=ce", ["target_on", "loss"], {}, "target_on=0.9 with --loss ce"),
    ("valid is not 'valid_loss'", [], {}, "valid is not 'valid_loss'"),
])
def test_library_messages_name_flags_on_the_command_line(message, fields, typed, expected):
    assert cli._in_flags(UsageError(message, fields), typed) == expected
