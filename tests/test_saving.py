"""handprop.save / handprop.load: every saveable layer comes back exactly, from either format."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import handprop as hp
from handprop import nn
from handprop.data.transforms import Normalize
from handprop.nn import registry
from handprop.safetensors import load_file, save_file
from handprop.saving import SavedModel, load, save
from handprop.serialize import load_model, save_arrays, save_model

FORMATS = [".npz", ".safetensors"]
SAVEABLE = [(e, c) for e in registry.layer_types() if e.args is not None and issubclass(e.cls, nn.Module)
            for c in e.cases]


def _mlp(dtype=np.float32) -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 5, dtype=dtype, rng=0), nn.GELU("tanh"), nn.Linear(5, 3, dtype=dtype, rng=1))


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("entry,case", SAVEABLE, ids=[c.label for _, c in SAVEABLE])
def test_every_saveable_layer_round_trips_exactly(tmp_path, entry, case, suffix):
    layer = entry.instance(case)  # float64: the dtype must come back too
    loaded = load(save(layer, tmp_path / f"m{suffix}"))
    assert type(loaded) is type(layer) and registry.layer_config(loaded) == registry.layer_config(layer)
    state, back = layer.state_dict(), loaded.state_dict()
    assert list(back) == list(state)
    for name, a in state.items():
        assert back[name].dtype == a.dtype and back[name].shape == a.shape
        np.testing.assert_array_equal(back[name], a)
    x = np.random.default_rng(0).standard_normal(case.shape)
    np.testing.assert_array_equal(loaded(x), layer(x))


@pytest.mark.parametrize("suffix", FORMATS)
def test_normalisation_and_meta_come_back_with_the_model(tmp_path, suffix):
    model, norm = _mlp(), Normalize(0.1307, 0.3081)
    path = save(model, tmp_path / f"m{suffix}", normalize=norm, meta={"epochs": 3, "classes": ["a", "b"]})
    saved = load(path, with_meta=True)
    assert isinstance(saved, SavedModel) and saved.meta == {"epochs": 3, "classes": ["a", "b"]}
    assert (saved.normalize.mean, saved.normalize.std) == (0.1307, 0.3081)
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(saved.model(x), model(x))
    bare = load(save(model, tmp_path / f"bare{suffix}"), with_meta=True)
    assert bare.normalize is None and bare.meta == {}


def test_safetensors_files_carry_the_architecture_in_their_metadata(tmp_path):
    model = _mlp()
    path = save(model, tmp_path / "m.safetensors", meta={"note": "x"})
    arrays, metadata = load_file(path)
    assert metadata["handprop"] == hp.__version__
    assert json.loads(metadata["spec"]) == registry.layer_config(model)
    assert json.loads(metadata["meta"]) == {"note": "x"}
    assert sorted(arrays) == ["model.layers.0.bias", "model.layers.0.weight", "model.layers.2.bias",
                              "model.layers.2.weight"]
    stn = pytest.importorskip("safetensors.numpy")
    np.testing.assert_array_equal(stn.load_file(str(path))["model.layers.0.weight"], model[0].weight.data)


def test_files_of_handprop_train_load_and_files_of_save_evaluate(tmp_path):
    """The .npz of `handprop train` (spec: a list of layers) loads; what save writes, load_model reads."""
    model, norm = _mlp(), Normalize(0.5, 0.25)
    save_model(tmp_path / "trained.npz", model, registry.layer_config(model)["layers"], norm, {"kind": "model"})
    saved = load(tmp_path / "trained.npz", with_meta=True)
    assert saved.meta == {} and saved.normalize.std == 0.25
    assert registry.layer_config(saved.model) == registry.layer_config(model)
    rebuilt, normalize, _, _ = load_model(save(model, tmp_path / "m.npz", normalize=norm))
    np.testing.assert_array_equal(rebuilt[0].weight.data, model[0].weight.data)
    assert normalize.mean == 0.5


def test_save_and_load_are_lazy_exports_of_handprop():
    assert hp.save is save and hp.load is load and {"save", "load"} <= set(hp.__all__)
    probe = "import sys, handprop; print('handprop.saving' in sys.modules, 'handprop.safetensors' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], "import handprop stays fast"


# -- errors: one ValueError naming the file ------------------------------------------------------------

def test_unknown_suffix_and_reserved_meta_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"m\.pt: expected a \.npz or \.safetensors file, got suffix '\.pt'"):
        save(_mlp(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"m\.pkl: expected a \.npz or \.safetensors file"):
        load(tmp_path / "m.pkl")
    with pytest.raises(ValueError, match=r"meta key 'spec' is reserved"):
        save(_mlp(), tmp_path / "m.npz", meta={"spec": []})
    for bad in ({"x": np.float32(1)}, {"lr": float("nan")}):
        with pytest.raises(ValueError, match=r"m\.safetensors: meta must be plain JSON"):
            save(_mlp(), tmp_path / "m.safetensors", meta=bad)
    assert list(tmp_path.iterdir()) == []


def test_a_model_with_unsaveable_layers_is_refused(tmp_path):
    import handprop.autograd as ag
    with pytest.raises(ValueError, match="TensorModule cannot be saved"):
        save(nn.Sequential(nn.Linear(2, 2), ag.TensorModule(lambda x: x.relu())), tmp_path / "m.safetensors")


def _weights(model) -> dict:
    return {f"model.{k}": v for k, v in model.state_dict().items()}


def _spec(model) -> str:
    return json.dumps(registry.layer_config(model))


@pytest.mark.parametrize("write,message", [
    (lambda p, m: save_file(_weights(m), p), r"no model spec inside; not a handprop model file"),
    (lambda p, m: save_file(_weights(m), p, {"spec": "{"}), r"__metadata__\['spec'\] is not valid JSON"),
    (lambda p, m: save_file(_weights(m), p, {"spec": _spec(m), "meta": "[1]"}), r"metadata 'meta' must be a JSON object"),
    (lambda p, m: save_file(_weights(m), p, {"spec": '{"type": "Conv9d"}'}), r"unknown layer type 'Conv9d'"),
    (lambda p, m: save_file({k: v for k, v in _weights(m).items() if "bias" not in k}, p, {"spec": _spec(m)}),
     r"the spec's parameter 'model.layers.0.bias' has no array"),
    (lambda p, m: save_file({**_weights(m), "model.layers.0.bias": np.zeros(4, np.float32)}, p, {"spec": _spec(m)}),
     r"array 'model.layers.0.bias' has shape \(4,\) but the spec describes \(5,\)"),
    (lambda p, m: save_file({**_weights(m), "model.layers.0.bias": np.zeros(5)}, p, {"spec": _spec(m)}),
     r"weights must share one float dtype, got float32, float64"),
    (lambda p, m: save_file({k: v.astype(np.int32) for k, v in _weights(m).items()}, p, {"spec": _spec(m)}),
     r"array 'model.layers.0.weight' has dtype int32; weights are float32 or float64"),
    (lambda p, m: save_file({**_weights(m), "normalize.mean": np.array(0.0)}, p, {"spec": _spec(m)}),
     r"Normalize state is missing std"),
    (lambda p, m: p.write_bytes(b"\x03" + bytes(7) + b"{}"), r"not a valid \.safetensors file: header length 3"),
])
def test_broken_model_files_are_one_value_error_naming_the_file(tmp_path, write, message):
    path = tmp_path / "bad.safetensors"
    write(path, _mlp())
    with pytest.raises(ValueError, match=message) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_an_npz_without_architecture_is_refused(tmp_path):
    path = save_arrays(tmp_path / "weights.npz", _mlp().state_dict())
    with pytest.raises(ValueError, match=r"weights\.npz: no model spec inside"):
        load(path)
