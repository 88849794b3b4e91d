"""handprop export / import / predict through the command line: effects, and user errors as one line."""
from __future__ import annotations

import json

import numpy as np
import pytest

import handprop as hp
from handprop import nn
from handprop.cli import main
from handprop.data import Normalize


@pytest.fixture
def model_file(tmp_path):
    hp.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
    return model, hp.save(model, tmp_path / "m.npz", normalize=Normalize(0.13, 0.31))


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_to_torch_then_import_gives_back_the_weights(model_file, tmp_path, capsys):
    model, path = model_file
    code, out, err = _run(capsys, "export", path, "--to", "torch", tmp_path / "t.safetensors")
    assert code == 0, err
    assert "torch.nn.Sequential(" in out and "torch.nn.Linear(784, 16)" in out and "(x - 0.13) / 0.31" in out
    code, out, err = _run(capsys, "import", tmp_path / "t.safetensors", tmp_path / "back.npz")
    assert code == 0, err
    back, normalize, _ = hp.load(tmp_path / "back.npz", with_meta=True)
    for a, b in zip(back.parameters(), model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert normalize.std == pytest.approx(0.31)


def test_export_to_onnx_writes_a_graph(model_file, tmp_path, capsys):
    pytest.importorskip("onnx")
    _, path = model_file
    code, out, err = _run(capsys, "export", path, "--to", "onnx", tmp_path / "m.onnx")
    assert code == 0, err
    assert (tmp_path / "m.onnx").stat().st_size > 784 * 16 * 4 and "onnxruntime.InferenceSession" in out


def test_predict_a_npy_batch_as_json(model_file, tmp_path, capsys):
    model, path = model_file
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "batch.npy", x)
    code, out, err = _run(capsys, "predict", path, tmp_path / "batch.npy", "--json", "--show", tmp_path / "seen")
    assert code == 0, err
    records = json.loads(out)
    expected = model.eval()((x.reshape(3, -1).astype(np.float32) / 255 - 0.13) / 0.31).argmax(1)
    assert [r["top"][0]["class"] for r in records] == expected.tolist()
    assert all(0 < sum(t["probability"] for t in r["top"]) <= 1 + 1e-6 for r in records)  # top-3 of a softmax
    assert len(list((tmp_path / "seen").glob("*.png"))) == 3


@pytest.mark.parametrize("argv,message", [
    (["export", "{m}", "--to", "torch", "{t}/out.pt"], "must be a .safetensors file"),
    (["import", "{t}/missing.pt", "{t}/x.npz"], "must be a .safetensors file"),
    (["predict", "{m}", "{t}/not-there.png"], "not-there.png"),
    (["predict", "{t}/nothing.npz", "{t}/x.png"], "no such model file"),
])
def test_user_errors_are_one_line_and_exit_2(model_file, tmp_path, capsys, argv, message):
    _, path = model_file
    code, out, err = _run(capsys, *[a.format(m=path, t=tmp_path) for a in argv])
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err


def _safetensors_bytes(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


SPEC = json.dumps({"type": "Sequential", "layers": [{"type": "Linear", "in_features": 2, "out_features": 1}]})


@pytest.mark.parametrize("content,message", [
    (b"\xff" * 8 + b"{}", "header length"),
    (_safetensors_bytes({"model.layers.0.weight": {"dtype": "F32", "shape": [2, 1], "data_offsets": [0, 80]}},
                        bytes(8)), "offsets span 80"),
    (_safetensors_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)), "overlap"),
    (_safetensors_bytes({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)), "a"),
    (_safetensors_bytes({"a": {"dtype": "F32", "shape": [10 ** 6, 10 ** 6], "data_offsets": [0, 8]}}, bytes(8)), "a"),
    (_safetensors_bytes({"__metadata__": {"spec": SPEC.replace("2", "1000000000")},
                         "model.layers.0.weight": {"dtype": "F32", "shape": [2, 1], "data_offsets": [0, 8]},
                         "model.layers.0.bias": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}},
                        bytes(12)), "shape"),
])
def test_crafted_safetensors_files_are_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    code, out, err = _run(capsys, "summary", path)
    assert code == 2 and str(path) in err and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
