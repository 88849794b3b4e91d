"""ONNX export: every registered layer type written as ONNX nodes, judged by onnxruntime against
handprop's own eval-mode outputs (float32, 1e-5), with a free batch axis."""
from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest

import handprop as hp
from handprop import nn
from handprop.data.transforms import Normalize
from handprop.extras import MissingExtraError
from handprop.interop.cli import export, export_onnx
from handprop.nn import registry

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from handprop.interop.onnx import BATCH, INPUT, IR_VERSION, OPSET, OUTPUT, Graph, to_onnx  # noqa: E402

ONNX_CASES = [(e, c) for e in registry.layer_types() if e.onnx is not None for c in e.cases]


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _run(proto, x: np.ndarray) -> np.ndarray:
    return _session(proto).run([OUTPUT], {INPUT: x})[0]


def _trained(layer, shape, seed=5):
    """``layer`` after two training forwards, so BatchNorm's running statistics are not the 0 and
    1 an export could get right by accident; then in eval mode, float32."""
    rng = np.random.default_rng(seed)
    layer.to(np.float64)
    for _ in range(2):
        layer(rng.standard_normal(shape) * 2 + 0.5)
    return layer.to(np.float32).eval()


def _mlp(*layers) -> nn.Sequential:
    return nn.Sequential(nn.Linear(784, 64, rng=0), *layers, nn.Linear(64, 10, rng=1))


@pytest.mark.parametrize("entry,case", ONNX_CASES, ids=[c.label for _, c in ONNX_CASES])
def test_every_exportable_case_gives_onnxruntime_the_same_outputs_at_any_batch_size(entry, case):
    layer = _trained(entry.instance(case), case.shape)
    session = _session(to_onnx(layer, case.shape[1:]))
    rng = np.random.default_rng(0)
    for batch in (1, 7):  # the same file: the batch axis is free
        x = (rng.standard_normal((batch, *case.shape[1:])) * case.scale).astype(np.float32)
        got = session.run([OUTPUT], {INPUT: x})[0]
        assert got.dtype == np.float32 and got.shape == layer(x).shape
        np.testing.assert_allclose(got, layer(x), rtol=1e-5, atol=1e-5)


def test_every_layer_type_of_an_mlp_has_an_export():
    exportable = {e.name for e in registry.layer_types() if e.onnx is not None}
    assert {"Linear", "ReLU", "LeakyReLU", "GeneralReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "LogSoftmax",
            "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout", "Sequential"} <= exportable


def test_handprop_train_models_export_with_a_free_batch_axis(tmp_path, capsys):
    model = _trained(_mlp(nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.3)), (32, 784))
    hp.save(model, tmp_path / "model.npz", normalize=Normalize(0.1307, 0.3081))
    assert export(tmp_path / "model.npz", "onnx", tmp_path / "model.onnx") == 0
    proto = onnx.load(tmp_path / "model.onnx")
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == OPSET >= 17 and proto.ir_version == IR_VERSION
    dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]  # noqa: E731
    assert dims(proto.graph.input[0]) == [BATCH, 784] and dims(proto.graph.output[0]) == [BATCH, 10]
    assert [n.op_type for n in proto.graph.node] == ["Gemm", "BatchNormalization", "Relu", "Identity", "Gemm"]
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    np.testing.assert_array_equal(weights["layers.0.weight"], model[0].weight.data)  # (in, out): transB=0
    np.testing.assert_array_equal(weights["layers.1.running_var"], model[1].running_var)
    assert {p.key: json.loads(p.value) for p in proto.metadata_props} == {
        "handprop.normalize": {"mean": 0.1307, "std": 0.3081}}
    x = np.random.default_rng(1).standard_normal((33, 784)).astype(np.float32)
    np.testing.assert_allclose(_run(proto, x), model(x), rtol=1e-5, atol=1e-5)
    printed = capsys.readouterr().out
    assert "['batch', 784]" in printed and "x = (x - 0.1307) / 0.3081" in printed
    assert f"onnxruntime.InferenceSession({str(tmp_path / 'model.onnx')!r})" in printed


def test_a_cnn_style_batchnorm2d_model_takes_any_image_size():
    model = _trained(nn.Sequential(nn.BatchNorm2d(3), nn.GELU(), nn.LayerNorm(6)), (4, 3, 5, 6))
    proto = to_onnx(model)
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == \
        [BATCH, 3, "height", "width"]
    x = np.random.default_rng(2).standard_normal((2, 3, 9, 6)).astype(np.float32)
    np.testing.assert_allclose(_run(proto, x), model(x), rtol=1e-5, atol=1e-5)


def test_a_cnn_with_batchnorm_gives_onnxruntime_the_same_logits():
    if not hasattr(nn, "Conv2d") or registry.lookup(nn.Conv2d).onnx is None:
        pytest.skip("Conv2d has no ONNX export registered yet")
    model = _trained(nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, rng=0), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, rng=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2, stride=1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10, rng=2), nn.LogSoftmax()), (8, 1, 28, 28))
    proto = to_onnx(model)
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == \
        [BATCH, 1, "height", "width"]
    session, rng = _session(proto), np.random.default_rng(4)
    for shape in ((1, 1, 28, 28), (7, 1, 28, 28), (2, 1, 20, 33)):
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(session.run([OUTPUT], {INPUT: x})[0], model(x), rtol=1e-5, atol=1e-5)


def test_float64_models_are_exported_in_float32():
    model = _mlp(nn.Tanh()).to(np.float64)
    proto = to_onnx(model)
    assert {i.data_type for i in proto.graph.initializer} == {onnx.TensorProto.FLOAT}
    x = np.random.default_rng(3).standard_normal((5, 784))
    np.testing.assert_allclose(_run(proto, x.astype(np.float32)), model(x), rtol=1e-4, atol=1e-5)


def test_an_identity_model_still_has_its_output():
    proto = to_onnx(nn.Sequential(nn.Dropout(0.5), nn.Sequential()), input_shape=(4,))
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(_run(proto, x), x)


# -- errors ------------------------------------------------------------------------------------------------

def test_a_layer_type_without_an_export_is_named(monkeypatch):
    monkeypatch.setitem(registry._TYPES, "Tanh", dataclasses.replace(registry._TYPES["Tanh"], onnx=None))
    with pytest.raises(ValueError, match=r"^Tanh has no ONNX export registered$"):
        to_onnx(_mlp(nn.Tanh()))


@pytest.mark.parametrize("model,shape,message", [
    (nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), None, "cannot tell the input shape of a model starting with ReLU"),
    (nn.Sequential(), None, "cannot tell the input shape of a model starting with Sequential"),
    (nn.Sequential(nn.Linear(3, 2)), (4,), r"expected input \(\.\.\., 3\), got \(1, 4\)"),
    (nn.Sequential(nn.Linear(3, 2)), (0,), r"input_shape must hold positive ints or axis names, got \(0,\)"),
    (nn.Sequential(nn.Linear(3, 2)), (True,), r"input_shape must hold positive ints"),
])
def test_unknown_or_wrong_input_shapes_are_refused(model, shape, message):
    with pytest.raises(ValueError, match=message):
        to_onnx(model, shape)


def test_the_output_must_be_an_onnx_file_and_nothing_is_written_on_error(tmp_path):
    hp.save(_mlp(nn.ReLU()), tmp_path / "model.npz")
    with pytest.raises(ValueError, match=r"model\.pb: the output must be a \.onnx file"):
        export_onnx(tmp_path / "model.npz", tmp_path / "model.pb")
    with pytest.raises(ValueError, match=r"expected input \(\.\.\., 784\)"):
        export_onnx(tmp_path / "model.npz", tmp_path / "model.onnx", input_shape=(3,))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_without_the_onnx_package_the_error_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    hp.save(_mlp(nn.ReLU()), tmp_path / "model.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingExtraError) as info:
        export(tmp_path / "model.npz", "onnx", tmp_path / "model.onnx")
    assert str(info.value) == "ONNX export needs the onnx package: pip install 'handprop[onnx]'"
    assert isinstance(info.value, ValueError) and isinstance(info.value, ImportError)  # the CLI's one-line error
    assert not (tmp_path / "model.onnx").exists()


def test_graph_refuses_values_no_node_wrote_and_non_numeric_constants():
    graph = Graph(input_rank=2)
    with pytest.raises(ValueError, match=r"Relu in the model reads 'x', which no node wrote"):
        graph.op("Relu", "x")
    with pytest.raises(ValueError, match=r"Mul in the model got a <U3 constant"):
        graph.op("Mul", INPUT, np.array("abc"))
