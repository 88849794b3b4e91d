"""PyTorch interop: state dicts with PyTorch's names and layouts, the torch.nn definition that
loads them, and the way back; PyTorch (imported only here) is the judge of the logits."""
from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

import handprop as hp
from handprop import nn
from handprop.interop import from_torch_state, parse_arch, to_torch_state, torch_definition
from handprop.interop.cli import DEFINITION_KEY, export, import_
from handprop.nn import registry
from handprop.safetensors import SafetensorsError, load_file, save_file

TORCH_CASES = [(e, c) for e in registry.layer_types() if e.torch_module is not None for c in e.cases]


def _input(case, dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = case.make_input(rng) if case.make_input else rng.standard_normal(case.shape) * case.scale
    return x.astype(dtype)


def _torch_model(torch, model_or_definition, state=None):
    """The printed definition evaluated (in this test only) and loaded with ``state``, strictly."""
    definition = model_or_definition if isinstance(model_or_definition, str) else torch_definition(model_or_definition)
    module = eval(definition, {"torch": torch})  # noqa: S307 (our own printed code, in a test)
    if state is not None:
        module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    return module.eval()


def _mlp(sizes=(784, 256, 10)) -> nn.Sequential:
    return nn.Sequential(nn.Linear(sizes[0], sizes[1], rng=0), nn.ReLU(), nn.Linear(sizes[1], sizes[2], rng=1))


@pytest.mark.parametrize("entry,case", TORCH_CASES, ids=[c.label for _, c in TORCH_CASES])
def test_every_exportable_case_gives_pytorch_the_same_outputs(torch, entry, case):
    layer = entry.instance(case).to(np.float32).eval()  # the torch model is in eval mode too
    module = _torch_model(torch, layer, to_torch_state(layer))
    assert type(module).__name__ == entry.torch_module.name
    x = _input(case)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, layer(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("entry,case", TORCH_CASES, ids=[c.label for _, c in TORCH_CASES])
def test_every_exportable_case_round_trips_through_pytorch_exactly(entry, case):
    layer = entry.instance(case)  # float64: the dtype comes back too
    back = from_torch_state(to_torch_state(layer), torch_definition(layer))
    assert registry.layer_config(back) == registry.layer_config(layer)
    assert registry.layer_config(registry.build(parse_arch(torch_definition(layer)))) == registry.layer_config(layer)
    state = layer.state_dict()
    for name, a in back.state_dict().items():
        assert a.dtype == state[name].dtype
        np.testing.assert_array_equal(a, state[name])


def test_an_mlp_exported_to_pytorch_gives_the_same_logits(torch):
    model = _mlp()
    state = to_torch_state(model)
    assert {k: v.shape for k, v in state.items()} == {"0.weight": (256, 784), "0.bias": (256,),
                                                      "2.weight": (10, 256), "2.bias": (10,)}
    assert torch_definition(model) == ("torch.nn.Sequential(\n    torch.nn.Linear(784, 256),\n"
                                       "    torch.nn.ReLU(),\n    torch.nn.Linear(256, 10),\n)")
    x = np.random.default_rng(2).standard_normal((64, 784)).astype(np.float32)
    with torch.no_grad():
        logits = _torch_model(torch, model, state)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, model(x), rtol=1e-5, atol=1e-5)


def test_fixed_arguments_are_spelled_out(torch):
    """PyTorch's LogSoftmax() guesses its dim (dim 0 for a 3-d input); the definition says -1."""
    layer = nn.LogSoftmax()
    assert torch_definition(layer) == "torch.nn.LogSoftmax(dim=-1)"
    x = np.random.default_rng(6).standard_normal((2, 3, 4)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(_torch_model(torch, layer)(torch.from_numpy(x)).numpy(), layer(x), atol=1e-6)


@pytest.mark.parametrize("arch", ["printed", "definition", "json"])
def test_a_pytorch_model_comes_to_handprop_with_the_same_logits(torch, arch):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.LeakyReLU(0.2),
                                 torch.nn.Linear(16, 8, bias=False), torch.nn.ReLU(inplace=True),
                                 torch.nn.GELU(approximate="tanh"), torch.nn.Sequential(torch.nn.Linear(8, 4)),
                                 torch.nn.LogSoftmax(dim=-1)).eval()
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    printed = str(module)
    text = {"printed": printed, "definition": torch_definition(from_torch_state(state, printed)),
            "json": json.dumps(registry.layer_config(from_torch_state(state, printed)))}[arch]
    model = from_torch_state(state, text)
    x = np.random.default_rng(3).standard_normal((5, 20)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-5)
    assert model[2].weight.shape == (16, 8), "handprop's (in, out) layout"


def test_handprop_defaults_are_pytorchs(torch):
    """torch_definition leaves out arguments at handprop's default: PyTorch's must be the same
    (positional arguments are always written)."""
    for entry in registry.layer_types():
        if entry.torch_module is None or not entry.args:
            continue
        ours = inspect.signature(entry.cls).parameters
        theirs = inspect.signature(getattr(torch.nn, entry.torch_module.name)).parameters
        for arg in entry.args:
            if arg.name in theirs and arg.name not in entry.torch_module.positional \
                    and ours[arg.name].default is not inspect.Parameter.empty:
                assert ours[arg.name].default == theirs[arg.name].default, (entry.name, arg.name)


# -- the hooks a layer with renamed parameters and PyTorch-only buffers uses (BatchNorm's shape) ---------

def test_renamed_and_pytorch_only_entries_go_through_the_hooks(monkeypatch):
    from handprop.nn.module import Parameter
    from handprop.nn.registry import Arg, TorchModule, register

    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))

    def to_torch(layer, state):
        return {"weight": state["gamma"], "num_batches_tracked": np.array(7, np.int64)}

    @register(args=(Arg("n", int, size=True),),
              torch_module=TorchModule("Scale", positional=("n",), to_torch=to_torch,
                                       from_torch=lambda layer, state: {"gamma": state["weight"]}))
    class Scale(nn.Module):
        def __init__(self, n: int):
            self.n, self.gamma = n, Parameter(np.arange(n, dtype=np.float32))

        def forward(self, x):
            return x * self.gamma.data

    model = nn.Sequential(nn.Linear(2, 3, rng=0), Scale(3))
    state = to_torch_state(model)
    assert sorted(state) == ["0.bias", "0.weight", "1.num_batches_tracked", "1.weight"]
    assert torch_definition(model).splitlines()[2] == "    torch.nn.Scale(3),"
    back = from_torch_state(state, torch_definition(model))
    np.testing.assert_array_equal(back[1].gamma.data, np.arange(3))
    with pytest.raises(ValueError, match=r"missing 1\.num_batches_tracked, unexpected none"):
        from_torch_state({k: v for k, v in state.items() if k != "1.num_batches_tracked"}, torch_definition(model))
    with pytest.raises(ValueError, match=r"1\.num_batches_tracked is float32 \(\); the architecture expects int64"):
        from_torch_state({**state, "1.num_batches_tracked": np.float32(7)}, torch_definition(model))


# -- errors ----------------------------------------------------------------------------------------------

def test_a_layer_without_pytorch_equivalent_is_named():
    model = nn.Sequential(nn.Linear(2, 2), nn.GeneralReLU(leak=0.1))
    for convert in (to_torch_state, torch_definition):
        with pytest.raises(ValueError, match=r"^GeneralReLU has no PyTorch equivalent registered$"):
            convert(model)


@pytest.mark.parametrize("arch,message", [
    ("torch.nn.Conv9d(1, 2)", r"torch\.nn\.Conv9d has no handprop equivalent registered; known: .*Linear"),
    ("__import__('os').system('echo hacked')", r"unexpected '\.' at character 16"),
    ("__import__('os')", r"torch\.nn\.__import__ has no handprop equivalent"),
    ("torch.nn.Linear(2, 3, bias=__import__('os'))", r"bias is a module call, expected a value"),
    ("torch.nn.Linear(2, 3); import os", r"unexpected ';' at character 21"),
    ("torch.nn.Linear(2, 3).weight", r"unexpected '\.' at character 21"),
    ("torch.nn.ReLU() torch.nn.ReLU()", r"expected the end at character 16"),
    ("lambda: 0", r"unexpected ':' at character 6"),
    ("torch.nn.Linear(2, 3, 4)", r"Linear\): takes at most 2 positional arguments \(in_features, out_features\)"),
    ("torch.nn.Linear(2, in_features=3)", r"in_features is given positionally and by keyword"),
    ("torch.nn.Linear(in_features=2, 3)", r"positional argument after keywords"),
    ("torch.nn.Linear(2, 3, bias=1)", r"bias must be bool, got 1"),
    ("torch.nn.Linear(2, 3, device='cpu')", r"unknown argument 'device'"),
    ("torch.nn.Linear(2, 3, bias=True, bias=False)", r"given bias twice"),
    ("torch.nn.LogSoftmax(dim=1)", r"dim must be -1 \(as handprop computes it\), got 1"),
    ("torch.nn.Sequential((fc1): Linear(2, 3))", r"child \(fc1\) is named"),
    ("torch.nn.Sequential((1): Linear(2, 3))", r"child \(1\) is named"),
    ("torch.nn.Sequential(3)", r"argument 0 is 3, not a layer"),
    ("torch.nn.Sequential(torch.nn.ReLU(), dim=1)", r"takes layers only"),
    ("torch.nn.Linear((0): 2, 3)", r"labels number the children of a Sequential only"),
    ("torch.nn.Sequential(" * 50 + ")" * 50, r"nested deeper than 32 levels"),
    ("torch.nn.Linear(2, (" * 50 + ")" * 51, r"nested deeper than 32 levels"),
    ("torch.nn.Linear(2, 3", r"expected ',' at character 20, found the end"),
    ("", r"expected a name at character 0"),
    ('{"type": "Linear"', r"architecture: not valid JSON"),
])
def test_bad_architectures_are_one_value_error(arch, message):
    with pytest.raises(ValueError, match=message) as info:
        from_torch_state({}, arch)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("change,message", [
    (lambda s: {k: v for k, v in s.items() if k != "0.bias"}, r"missing 0\.bias, unexpected none"),
    (lambda s: {**s, "0.running_mean": np.zeros(4)}, r"missing none, unexpected 0\.running_mean"),
    (lambda s: {**s, "0.weight": s["0.weight"].T}, r"0\.weight is float32 \(5, 4\); the architecture expects a float "
                                                     r"array of shape \(4, 5\)"),
    (lambda s: {**s, "0.bias": s["0.bias"].astype(np.int64)}, r"0\.bias is int64 \(4,\)"),
    (lambda s: {**s, "0.bias": s["0.bias"].astype(np.float64)}, r"weights must share one float dtype"),
])
def test_state_dicts_that_do_not_match_the_architecture_are_refused(change, message):
    model = _mlp((5, 4, 3))
    with pytest.raises(ValueError, match=message) as info:
        from_torch_state(change(to_torch_state(model)), torch_definition(model), where="w.safetensors")
    assert str(info.value).startswith("w.safetensors: ")


# -- the commands ------------------------------------------------------------------------------------------

def test_export_writes_what_pytorch_loads_and_prints_how(torch, tmp_path, capsys):
    from safetensors.torch import load_file as torch_load_file

    from handprop.data.transforms import Normalize

    model = _mlp()
    hp.save(model, tmp_path / "model.npz", normalize=Normalize(0.1307, 0.3081))
    assert export(tmp_path / "model.npz", "torch", tmp_path / "torch.safetensors") == 0
    printed = capsys.readouterr().out
    assert f"model.load_state_dict(load_file({str(tmp_path / 'torch.safetensors')!r}))" in printed
    assert "x = (x - 0.1307) / 0.3081" in printed
    code = printed[printed.index("import torch"):]
    scope: dict = {}
    exec(code, scope)  # noqa: S102 (the printed snippet, run as a user would)
    x = np.random.default_rng(4).standard_normal((8, 784)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(scope["model"](torch.from_numpy(x)).numpy(), model(x), rtol=1e-5, atol=1e-5)
    assert sorted(torch_load_file(str(tmp_path / "torch.safetensors"))) == ["0.bias", "0.weight", "2.bias", "2.weight"]


def test_import_builds_the_handprop_model_from_pytorch_weights(torch, tmp_path, capsys):
    from safetensors.torch import save_file as torch_save_file

    torch.manual_seed(1)
    module = torch.nn.Sequential(torch.nn.Linear(12, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).eval()
    torch_save_file(module.state_dict(), str(tmp_path / "torch.safetensors"))
    assert import_(tmp_path / "torch.safetensors", str(module), tmp_path / "model.safetensors") == 0
    assert f"wrote {tmp_path / 'model.safetensors'}: 99 parameters" in capsys.readouterr().out
    saved = hp.load(tmp_path / "model.safetensors", with_meta=True)
    x = np.random.default_rng(5).standard_normal((4, 12)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(saved.model(x), module(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)
    assert saved.normalize is None and saved.meta == {"imported_from": str(tmp_path / "torch.safetensors")}


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_export_then_import_gives_back_the_same_model_file(tmp_path, suffix, capsys):
    from handprop.data.transforms import Normalize

    model = _mlp((6, 5, 2)).to(np.float64)
    hp.save(model, tmp_path / f"a{suffix}", normalize=Normalize(0.5, 2.0))
    export(tmp_path / f"a{suffix}", "torch", tmp_path / "t.safetensors")
    assert DEFINITION_KEY in load_file(tmp_path / "t.safetensors")[1]
    import_(tmp_path / "t.safetensors", None, tmp_path / f"b{suffix}")  # the file carries its architecture
    a, b = hp.load(tmp_path / f"a{suffix}", with_meta=True), hp.load(tmp_path / f"b{suffix}", with_meta=True)
    assert registry.layer_config(a.model) == registry.layer_config(b.model)
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert x.dtype == y.dtype == np.float64
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert (b.normalize.mean, b.normalize.std) == (0.5, 2.0)


def test_command_errors_are_value_errors_naming_the_file_or_flag(tmp_path):
    hp.save(_mlp((4, 3, 2)), tmp_path / "m.npz")
    save_file({"0.weight": np.zeros((3, 4), np.float32)}, tmp_path / "bare.safetensors")
    (tmp_path / "evil.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    (tmp_path / "model.pt").write_bytes(b"\x80\x04")
    cases = [
        (lambda: export(tmp_path / "m.npz", "tflite", tmp_path / "o.safetensors"),
         r"--to: unknown target 'tflite'; expected torch, onnx"),
        (lambda: export(tmp_path / "m.npz", "torch", tmp_path / "o.pt"), r"o\.pt: the output must be a \.safetensors"),
        (lambda: export(tmp_path / "missing.npz", "torch", tmp_path / "o.safetensors"), r"missing\.npz"),
        (lambda: import_(tmp_path / "model.pt", "torch.nn.ReLU()", tmp_path / "o.npz"), r"model\.pt: PyTorch weights "
                                                                                        r"must be a \.safetensors file"),
        (lambda: import_(tmp_path / "bare.safetensors", None, tmp_path / "o.npz"), r"bare\.safetensors: no architecture"),
        (lambda: import_(tmp_path / "evil.safetensors", "torch.nn.ReLU()", tmp_path / "o.npz"),
         r"evil\.safetensors: not a valid \.safetensors file: header length"),
        (lambda: import_(tmp_path / "bare.safetensors", "torch.nn.Sequential(torch.nn.Linear(4, 3))", tmp_path / "o.npz"),
         r"bare\.safetensors: does not match the architecture: missing 0\.bias"),
        (lambda: import_(tmp_path / "bare.safetensors", "torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False))",
                         tmp_path / "o.txt"), r"o\.txt: expected a \.npz or \.safetensors file"),
    ]
    for run, message in cases:
        with pytest.raises((ValueError, FileNotFoundError), match=message) as info:
            run()
        assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.safetensors", "evil.safetensors", "m.npz", "model.pt"]
    with pytest.raises(SafetensorsError):
        import_(tmp_path / "evil.safetensors", "torch.nn.ReLU()", tmp_path / "o.npz")


def test_a_cnn_with_batchnorm_gives_pytorch_the_same_logits_both_ways(torch):
    hp.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    rng = np.random.default_rng(1)
    for _ in range(3):  # non-trivial running statistics
        cnn(rng.standard_normal((16, 1, 28, 28)).astype(np.float32))
    cnn.eval()
    x = rng.standard_normal((5, 1, 28, 28)).astype(np.float32)
    module = _torch_model(torch, torch_definition(cnn), to_torch_state(cnn))
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x)).numpy(), cnn(x), rtol=1e-5, atol=1e-5)
    back = from_torch_state({k: v.numpy() for k, v in module.state_dict().items()}, torch_definition(cnn)).eval()
    np.testing.assert_allclose(back(x), cnn(x), rtol=1e-6, atol=1e-6)
