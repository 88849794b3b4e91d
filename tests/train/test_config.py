"""TrainConfig: defaults, recipes and explicit settings, every check, JSON round trip (no data)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from handprop.errors import UsageError
from handprop.train.config import RECIPES, TrainConfig, settings


def test_defaults_are_the_plain_handprop_train():
    c = TrainConfig()
    assert (c.optimizer, c.lr, c.weight_decay, c.momentum, c.nesterov) == ("adamw", 3e-3, 0.01, 0.0, False)
    assert (c.batch_size, c.shuffle, c.epochs, c.schedule, c.log_every) == (64, True, 5, "onecycle", 1)
    assert (c.hidden, c.activation, c.init, c.init_std, c.valid) == ((256,), "relu", "kaiming_normal", None, 10000)
    assert TrainConfig.create() == c


@pytest.mark.parametrize("optimizer, lr, weight_decay", [("sgd", 0.1, 0.0), ("adam", 3e-3, 0.0),
                                                         ("adamw", 3e-3, 0.01)])
def test_the_optimizer_fills_what_is_left_to_it(optimizer, lr, weight_decay):
    c = TrainConfig.create(optimizer=optimizer)
    assert (c.lr, c.weight_decay) == (lr, weight_decay)
    assert TrainConfig.create(optimizer=optimizer, lr=0.5, weight_decay=0.2).lr == 0.5


def test_explicit_settings_override_the_recipe():
    c = TrainConfig.create("epfl", batch_size=64)
    assert c.batch_size == 64 and not c.full_batch and c.shuffle, "mini-batches are shuffled by default"
    assert c.recipe == "epfl" and c.loss == "mse" and c.lr == "0.1/N", "the rest of the recipe stays"
    assert TrainConfig.create("epfl").full_batch and not TrainConfig.create("epfl").shuffle
    assert TrainConfig.create("fastai", batch_size=128).shuffle is False, "the recipe's order stays"


def test_a_recipe_value_follows_the_setting_it_was_chosen_for():
    assert TrainConfig.create("epfl", init="xavier_normal").init_std is None
    assert TrainConfig.create("epfl", init_std=1e-3).init_std == 1e-3
    assert TrainConfig.create("epfl", init="normal").init_std == 1e-6, "the same init keeps its std"
    adam = TrainConfig.create("fastai", optimizer="adam")
    assert (adam.lr, adam.weight_decay) == (3e-3, 0.0), "fastai's SGD lr 0.5 is not Adam's"
    assert TrainConfig.create("epfl", optimizer="sgd").lr == "0.1/N", "restating the optimizer changes nothing"
    assert TrainConfig.create("epfl", optimizer="sgd", momentum=0.9, nesterov=True).nesterov


@pytest.mark.parametrize("model", ["cnn", "resnet"])
def test_conv_models_train_as_minai_does_unless_told_otherwise(model):
    c = TrainConfig.create(model=model)
    assert (c.batch_size, c.lr, c.activation, c.optimizer, c.weight_decay, c.schedule) == \
        (256, 1e-2, "general" if model == "resnet" else "relu", "adamw", 0.01, "onecycle")
    told = TrainConfig.create(model=model, batch_size=64, lr=3e-3, activation="tanh")
    assert (told.batch_size, told.lr, told.activation) == (64, 3e-3, "tanh"), "explicit settings win"
    assert TrainConfig.create(model=model, optimizer="sgd").lr == 0.1, "the model's lr is AdamW's, not SGD's"
    assert TrainConfig.create(model=model, optimizer="adamw").lr == 1e-2, "restating the optimizer changes nothing"
    with pytest.raises(UsageError, match="batch_size must be >= 1, got 0"):
        TrainConfig.create(model=model, batch_size=0)


def test_the_mlp_keeps_the_plain_defaults():
    assert TrainConfig.create(model="mlp") == TrainConfig()


def test_init_normal_without_a_std_uses_the_default_std():
    assert TrainConfig.create(init="normal").init_std == 0.01


def test_full_batch_logs_a_tenth_of_its_steps_unless_told():
    assert TrainConfig.create(batch_size=None, epochs=50).log_every == 5
    assert TrainConfig.create(batch_size=None, epochs=50, log_every=7).log_every == 7
    assert TrainConfig.create(batch_size=None, epochs=3).log_every == 1
    assert TrainConfig.create("epfl").log_every == 100


@pytest.mark.parametrize("settings, fields", [
    ({"optimizer": "adam", "momentum": 0.9}, {"momentum", "optimizer"}),
    ({"optimizer": "adamw", "momentum": 0.5}, {"momentum", "optimizer"}),
    ({"optimizer": "adam", "nesterov": True}, {"nesterov", "optimizer"}),
    ({"optimizer": "sgd", "nesterov": True}, {"nesterov", "momentum"}),
    ({"init_std": 0.1}, {"init_std", "init"}),
    ({"init": "xavier_uniform", "init_std": 0.1}, {"init_std", "init"}),
    ({"batch_size": None, "shuffle": True}, {"shuffle", "batch_size"}),
    ({"valid": 0, "patience": 2}, {"patience", "valid"}),
])
def test_a_setting_the_others_would_ignore_is_refused(settings, fields):
    with pytest.raises(UsageError) as info:
        TrainConfig.create(**settings)
    assert set(info.value.fields) == fields
    for name in fields:
        assert name in str(info.value)


def test_harmless_combinations_are_accepted():
    TrainConfig.create(optimizer="adam", momentum=0.0, nesterov=False)
    TrainConfig.create(batch_size=None, shuffle=False)
    TrainConfig.create("epfl", optimizer="adam")  # the recipe's SGD settings follow its optimizer


@pytest.mark.parametrize("name, value", [
    ("batch_size", 0), ("batch_size", 12.5), ("batch_size", True), ("lr", -0.1), ("lr", 0), ("lr", float("nan")),
    ("lr", float("inf")), ("lr", "fast"), ("lr", "x/N"), ("lr", "-1/N"), ("epochs", 0), ("epochs", "2"),
    ("hidden", []), ("hidden", [32, 0]), ("hidden", 32), ("activation", "swish"), ("loss", "hinge"),
    ("init", "orthogonal"), ("optimizer", "rmsprop"), ("schedule", "step"), ("dataset", "cifar"),
    ("valid", -1), ("seed", -1), ("momentum", -0.9), ("weight_decay", -1e-4), ("init_std", 0.0),
    ("patience", 0), ("log_every", 0), ("subset", 0), ("shuffle", 1), ("normalize", "yes"), ("reduction", "max"),
    ("metric", "f1"), ("target_on", float("nan")), ("recipe", "keras"), ("epochs", None), ("data_dir", 3),
])
def test_a_bad_value_is_refused_naming_its_field(name, value):
    with pytest.raises(UsageError, match=rf"^{name} must be") as info:
        TrainConfig.create(**{name: value})
    assert info.value.fields == (name,)


def test_unknown_settings_are_refused():
    with pytest.raises(UsageError, match="unknown setting 'batchsize'"):
        TrainConfig.create(batchsize=32)


def test_values_are_normalised():
    c = TrainConfig.create(hidden=[32, 16], lr=1, data_dir=Path("/data"), init="normal", init_std=1)
    assert c.hidden == (32, 16) and isinstance(c.lr, float) and c.data_dir == "/data"
    assert isinstance(c.init_std, float)
    assert TrainConfig.create(lr="0.5/N").lr == "0.5/N"


def test_a_config_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().lr = 1.0  # type: ignore[misc]
    with pytest.raises(UsageError, match="momentum"):
        dataclasses.replace(TrainConfig(), momentum=0.9)  # a changed copy is checked again


@pytest.mark.parametrize("config", [
    TrainConfig(), TrainConfig.create("epfl"), TrainConfig.create("fastai"),
    TrainConfig.create(hidden=[64, 32], data_dir=Path("/x"), optimizer="sgd", momentum=0.9, nesterov=True,
                       init="normal", init_std=0.05, patience=2, download=False, batch_size=None),
], ids=["default", "epfl", "fastai", "many"])
def test_json_round_trip(config):
    text = json.dumps(config.to_dict(), allow_nan=False)
    back = TrainConfig.from_dict(json.loads(text))
    assert back == config
    assert isinstance(json.loads(text)["hidden"], list)


#: A config as handprop 0.1 saved it (the dict format before TrainConfig): the epfl recipe.
FORMAT_1_EPFL = {
    "dataset": "mnist", "data_dir": None, "download": True, "hidden": [50], "activation": "tanh",
    "output_activation": "tanh", "loss": "mse", "reduction": "sum", "target_on": 0.9, "target_off": -0.9,
    "init": "normal", "init_std": 1e-6, "optimizer": "sgd", "lr": "0.1/N", "momentum": 0.0, "nesterov": False,
    "weight_decay": 0.0, "schedule": "none", "batch_size": 64, "full_batch": True, "shuffle": True,
    "epochs": 1000, "subset": 1000, "test_subset": 1000, "valid": 0, "normalize": True, "seed": 0,
    "patience": None, "log_every": 100, "metric": "error", "recipe": "epfl",
}


def test_reads_the_format_runs_saved_before():
    assert TrainConfig.from_dict(FORMAT_1_EPFL) == TrainConfig.create("epfl")
    default_then = {**FORMAT_1_EPFL, **TrainConfig().to_dict(), "full_batch": False, "init_std": 0.01,
                    "nesterov": True}
    assert TrainConfig.from_dict(default_then) == TrainConfig(), "settings the old code ignored are dropped"
    sgd = TrainConfig.from_dict({**default_then, "optimizer": "sgd", "momentum": 0.9, "lr": 0.1})
    assert sgd.nesterov and sgd.momentum == 0.9, "settings the old code used are kept"


def test_a_config_missing_newer_settings_gets_their_defaults():
    saved = TrainConfig.create(epochs=3).to_dict()
    del saved["patience"], saved["metric"]
    assert TrainConfig.from_dict(saved) == TrainConfig.create(epochs=3)


@pytest.mark.parametrize("data, match", [
    ({"epochs": 0}, "run/last.npz: epochs must be >= 1"),
    ({"no_such": 1}, "run/last.npz: unknown saved setting 'no_such'"),
    ([1, 2], "run/last.npz: the saved config is not a JSON object"),
])
def test_a_bad_saved_config_names_the_file(data, match):
    with pytest.raises(UsageError, match=match) as info:
        TrainConfig.from_dict(data, "run/last.npz")
    assert info.value.fields == (), "about the file, not about a flag"


def test_changes_lists_every_setting_that_differs_from_the_defaults():
    assert TrainConfig().changes() == []
    c = TrainConfig.create(optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=1e-4, init="normal",
                           init_std=0.05, shuffle=False, patience=3, hidden=[32, 16])
    assert c.changes(skip=["hidden"]) == ["init normal", "init std 0.05", "optimizer sgd", "lr 0.1", "momentum 0.9",
                                          "nesterov", "weight decay 0.0001", "no shuffle", "patience 3"]


def test_every_setting_has_help_and_the_recipes_only_known_settings():
    for name, s in settings().items():
        assert s.help or s.switches, name
    for values in RECIPES.values():
        assert set(values) <= set(settings())
