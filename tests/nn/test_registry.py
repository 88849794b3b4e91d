"""The layer registry: one registration per type feeds the CLI, model files and the trust matrix."""
from __future__ import annotations

import numpy as np
import pytest

import handprop as hp
import handprop.autograd  # noqa: F401  (registers TensorModule/TensorLoss before any test copies the table)
from handprop import nn
from handprop.cli import build_parser
from handprop.nn import registry
from handprop.serialize import build_model


def _choices(parser, flag: str) -> list[str]:
    train = parser._subparsers._group_actions[0].choices["train"]
    return next(a.choices for a in train._actions if flag in a.option_strings)


def test_cli_activation_and_loss_choices_equal_the_registry():
    parser = build_parser()
    assert list(_choices(parser, "--activation")) == list(registry.activations())
    assert list(_choices(parser, "--loss")) == list(registry.losses())
    assert {"relu", "leaky", "general", "tanh", "sigmoid", "gelu", "silu"} <= set(registry.activations())


def test_activation_names_build_the_documented_layers():
    assert registry.activation("leaky").negative_slope == 0.01
    general = registry.activation("general")
    assert (general.leak, general.sub, general.maxv) == (0.1, 0.4, None)
    assert isinstance(registry.activation("gelu"), nn.GELU) and registry.activation("gelu").approximate == "none"
    assert isinstance(registry.activation("silu"), nn.SiLU)


SAVEABLE = [(e, c) for e in registry.layer_types() if e.args is not None and issubclass(e.cls, nn.Module)
            for c in e.cases]


@pytest.mark.parametrize("entry,case", SAVEABLE, ids=[c.label for _, c in SAVEABLE])
def test_every_saveable_case_rebuilds_from_its_config(entry, case):
    layer = entry.instance(case)
    config = registry.layer_config(layer)
    rebuilt = registry.build(config).to(np.float64)
    assert type(rebuilt) is type(layer) and registry.layer_config(rebuilt) == config
    rebuilt.load_state_dict(layer.state_dict())
    x = np.random.default_rng(0).standard_normal(case.shape)
    np.testing.assert_allclose(rebuilt(x), layer(x), rtol=1e-12)


@pytest.mark.parametrize("config,message", [
    ({"type": "Conv9d"}, "unknown layer type 'Conv9d'"),
    ({"type": "Linear", "in_features": 3}, "missing argument 'out_features'"),
    ({"type": "Linear", "in_features": 3, "out_features": 2, "init": "evil"}, "unknown argument 'init'"),
    ({"type": "Linear", "in_features": -3, "out_features": 2}, "in_features must be a positive integer"),
    ({"type": "Linear", "in_features": 3.5, "out_features": 2}, "in_features must be int"),
    ({"type": "Linear", "in_features": True, "out_features": 2}, "in_features must be int"),
    ({"type": "GELU", "approximate": "erf"}, "approximate must be one of 'none', 'tanh'"),
    ({"type": "LeakyReLU", "negative_slope": float("nan")}, "negative_slope must be a finite number"),
    ({"type": "Sequential", "layers": [{"type": "CrossEntropyLoss"}]}, "unknown layer type 'CrossEntropyLoss'"),
    ({"type": "Sequential", "layers": {"type": "ReLU"}}, "layers must be a list"),
    (["ReLU"], "expected a layer description"),
])
def test_build_rejects_bad_configs_with_a_named_value_error(config, message):
    with pytest.raises(ValueError, match=message):
        build_model(config if isinstance(config, dict) else [config])


def test_a_new_activation_is_one_class_and_one_registration(monkeypatch):
    """What GELU and SiLU needed: the class, its maths, one @register; every consumer follows."""
    from handprop.nn.registry import Activation, Case, register

    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))

    @register(tensor=lambda layer: lambda x: x * x.tanh(), torch=lambda torch, layer: lambda x: x * torch.tanh(x),
              cases=[Case("XTanh", (3, 4))], activation=Activation("xtanh"))
    class XTanh(nn.Module):
        def forward(self, x):
            self._save(x)
            return x * np.tanh(x)

        def backward(self, g, input_grad=True):
            (x,) = self._saved()
            t = np.tanh(x)
            return g * (t + x * (1 - t * t))

    assert "xtanh" in _choices(build_parser(), "--activation")
    assert isinstance(build_model([{"type": "XTanh"}])[0], XTanh)
    from handprop.trust import builtin_cases, trust_matrix
    assert "XTanh" in [c.name for c in builtin_cases()]
    rows = dict(trust_matrix()[1])
    assert all(e is None or e <= 1e-6 for e in rows["XTanh"])


def test_registering_a_second_class_under_a_taken_name_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))
    with pytest.raises(ValueError, match="named ReLU is registered already"):
        registry.register()(type("ReLU", (nn.Module,), {}))


def test_tensor_modules_are_registered_but_cannot_be_saved():
    act = hp.autograd.TensorModule(lambda x: x.relu())
    with pytest.raises(ValueError, match="TensorModule cannot be saved"):
        registry.layer_config(nn.Sequential(nn.Linear(2, 2), act))
