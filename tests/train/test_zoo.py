"""``handprop train --model cnn|resnet``, ``--augment``, ``--tta``: what Run.create builds from them,
that the cnn learns, that model files rebuild the conv models, and their train/eval behaviour."""
from __future__ import annotations

import numpy as np
import pytest

import handprop.evaluate
from handprop import nn
from handprop.data import load_dataset
from handprop.data.augment import Augment
from handprop.errors import UsageError
from handprop.evaluate import evaluate
from handprop.serialize import load_model
from handprop.train import build as B
from handprop.train import run as run_mod
from handprop.train.config import TrainConfig
from handprop.train import metrics
from handprop.train.run import Run, model_as_tested

from .helpers import run_main

#: 2,000 training images, 2 epochs of the cnn's batch 256 (16 steps): measured 80.8%, 85.4%, 86.3%,
#: 86.5% test accuracy (seeds 0-3, first 1,000 test images; chance is 10%), about 15 s on a loaded
#: 2-core machine.
CNN_FLOOR = 0.75
SMALL = {"subset": 2000, "valid": 1000, "test_subset": 1000}
TINY = {"subset": 256, "valid": 128, "test_subset": 256, "epochs": 1}


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory, data_root):
    """A finished 2-epoch cnn run on 2,000 MNIST images."""
    cfg = TrainConfig.create(model="cnn", epochs=2, data_dir=str(data_root / "mnist"), **SMALL)
    run = Run.create(cfg, tmp_path_factory.mktemp("cnn") / "run", quiet=True)
    run.fit()
    return run


@pytest.fixture
def loads(data_root, monkeypatch):
    """MNIST's arrays for whichever dataset a run asks for; returns the names asked for."""
    arrays = load_dataset("mnist", root=data_root / "mnist", download=False)
    asked = []
    monkeypatch.setattr(run_mod, "load_dataset", lambda name, root=None, download=True: asked.append(name) or arrays)
    return asked


def _build(tmp_path, **settings) -> Run:
    return Run.create(TrainConfig.create(**{**TINY, **settings}), tmp_path / "run", quiet=True)


def test_the_cnn_learns(cnn_run):
    assert cnn_run.result["test_accuracy"] >= CNN_FLOOR
    assert cnn_run.learn.history[-1]["train_loss"] < cnn_run.learn.history[0]["train_loss"]


@pytest.mark.parametrize("model, block", [("cnn", nn.Conv2d), ("resnet", nn.ResBlock)])
def test_conv_models_take_images(tmp_path, loads, model, block):
    run = _build(tmp_path, model=model)
    layers = list(run.model)
    assert [type(m) for m in layers[-3:]] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear]
    blocks = [m for m in layers if isinstance(m, block)]
    n = len(B.RESNET_CHANNELS if model == "resnet" else B.CNN_CHANNELS)
    assert len(blocks) == n and [b.stride in (1, (1, 1)) for b in blocks] == [True] + [False] * (n - 1)
    if model == "resnet":
        assert [(b.ni, b.nf) for b in blocks] == list(zip((1, *B.RESNET_CHANNELS), B.RESNET_CHANNELS))
    else:
        assert sum(isinstance(m, nn.BatchNorm2d) for m in layers) == 5
    xb, _ = next(iter(run.learn.train_dl))
    assert xb.shape == (256, 1, 28, 28) and run.data.x_test.shape == (256, 1, 28, 28)  # the conv models' batch 256
    assert run.model(xb).shape == (256, 10)
    assert f"{'ResNet of 6 ResBlocks' if model == 'resnet' else 'CNN of 5 conv-BN-relu'}" in run.describe()


def test_convolutions_get_the_configured_init(tmp_path, loads):
    convs = [m for m in _build(tmp_path, model="cnn", init="kaiming_normal").model.modules()
             if isinstance(m, nn.Conv2d)]
    for conv in convs[1:]:  # enough weights for a std estimate: kaiming normal's sqrt(2 / fan_in)
        fan_in = conv.in_channels * 9
        assert abs(conv.weight.data.std() / np.sqrt(2 / fan_in) - 1) < 0.1
    default = [m for m in _build(tmp_path, model="cnn", init="default").model.modules() if isinstance(m, nn.Conv2d)]
    assert abs(default[-1].weight.data.std() / np.sqrt(1 / (3 * 128 * 9)) - 1) < 0.1  # PyTorch's: U(+-1/sqrt(fan_in))


def test_the_mlp_keeps_flat_rows(tmp_path, loads):
    run = _build(tmp_path)
    assert run.data.x_train.shape == (256, 784) and isinstance(run.model[0], nn.Linear)


@pytest.mark.parametrize("dataset, flip", [("mnist", False), ("fashion-mnist", True)])
def test_augment_reaches_the_training_loader_only(tmp_path, loads, dataset, flip):
    run = _build(tmp_path, model="cnn", augment=True, dataset=dataset)
    assert isinstance(run.augment, Augment) and run.augment.flip is flip
    assert run.learn.train_dl.transform is run.augment and run.learn.valid_dl.transform is None
    assert run.augment.rng is run.loader_rng  # checkpoints save this generator's state: resumes stay exact
    assert run.augment.fill == pytest.approx(float(run.data.x_train.min()))  # a blank pixel, normalised
    xb, _ = next(iter(run.learn.train_dl))
    assert not np.isin(xb, run.data.x_train[:256]).all()  # augmented values, not the stored images
    assert _build(tmp_path, model="cnn").learn.train_dl.transform is None


def test_resume_of_an_augmented_run_is_bit_identical(tmp_path, loads):
    settings = {"augment": True, "schedule": "none", "hidden": [16]}
    whole = _build(tmp_path / "a", epochs=2, **settings)
    whole.fit()
    half = _build(tmp_path / "b", epochs=1, **settings)
    half.fit()
    resumed = Run.resume(tmp_path / "b" / "run", {"epochs": 2}, quiet=True)
    resumed.fit()
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_tta_averages_the_logits_of_shifted_copies(tmp_path, loads, capsys, monkeypatch):
    run = _build(tmp_path, model="cnn", tta=True)
    run.fit()
    x, y = run.data.x_test, run.data.y_test
    plain = metrics.test_report(run.model, run.loss, x, y, 10)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=run.data.blank)
    shifted = [padded[:, :, 1 + dy:29 + dy, 1 + dx:29 + dx] for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    run.model.eval()
    logits = np.mean([run.model(np.ascontiguousarray(v)) for v in [x, *shifted]], axis=0)
    assert run.result["test_loss"] == pytest.approx(run.loss(logits, y), rel=1e-5)
    assert run.result["test_loss"] != pytest.approx(plain["test_loss"], rel=1e-3)
    assert run.result["test_accuracy"] == np.mean(logits.argmax(axis=1) == y)
    monkeypatch.setattr(handprop.evaluate, "load_dataset", run_mod.load_dataset)  # the loads fixture's
    capsys.readouterr()
    assert evaluate(tmp_path / "run") == 0  # evaluate tests the saved run as it was tested
    assert f"test loss {run.result['test_loss']:.4f}" in capsys.readouterr().out


@pytest.mark.parametrize("dataset, augment, views", [("mnist", True, 5), ("fashion-mnist", False, 5),
                                                     ("fashion-mnist", True, 2)])
def test_tta_mirrors_only_clothes_the_model_was_trained_mirrored_on(tmp_path, loads, dataset, augment, views):
    run = _build(tmp_path, model="cnn", dataset=dataset, augment=augment, tta=True)
    tested = model_as_tested(run.model, run.cfg, run.data.image_shape, run.data.blank)
    x = run.data.x_test[:4]
    assert tested.model is run.model and len(tested.views) == views
    mirrored = [v for v in tested.views if np.array_equal(v(x), x[..., ::-1])]
    assert len(mirrored) == (views == 2)


@pytest.mark.parametrize("model", ["cnn", "resnet"])
def test_evaluate_rebuilds_conv_models_from_the_model_file(tmp_path, loads, capsys, monkeypatch, model):
    run = _build(tmp_path, model=model, dataset="mnist")
    run.fit()
    loaded, _, meta, _ = load_model(tmp_path / "run" / "model.npz")
    assert [type(m) for m in loaded] == [type(m) for m in run.model]
    x = run.data.x_test[:32]
    np.testing.assert_array_equal(loaded.eval()(x), run.model.eval()(x))
    monkeypatch.setattr(handprop.evaluate, "load_dataset", run_mod.load_dataset)  # the loads fixture's
    capsys.readouterr()
    assert evaluate(tmp_path / "run") == 0
    assert f"test accuracy {run.result['test_accuracy']:.2%}" in capsys.readouterr().out


def test_batchnorm_and_dropout_switch_in_a_trained_model(cnn_run):
    layers = list(cnn_run.model)
    model = nn.Sequential(*layers[:-1], nn.Dropout(0.5), layers[-1])
    x = cnn_run.data.x_test[:48]
    before = model.state_dict()
    model.eval()
    alone, in_batch = model(x[:8]), model(x)[:8]
    np.testing.assert_allclose(alone, in_batch, rtol=1e-5, atol=1e-5)  # running statistics: no batch effect
    np.testing.assert_array_equal(model(x), model(x))  # no dropout
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())  # nothing tracked
    model.train()
    assert not np.allclose(model(x[:8]), model(x)[:8], atol=1e-3)  # batch statistics
    assert not np.allclose(model(x), model(x), atol=1e-3)  # a fresh dropout mask each call
    moved = [k for k, v in model.state_dict().items() if not np.array_equal(v, before[k])]
    assert {k.split(".")[-1] for k in moved} == {"running_mean", "running_var", "num_batches_tracked"}
    model.load_state_dict(before)
    model.eval()
    np.testing.assert_array_equal(model(x[:8]), alone)


def test_mlp_settings_are_refused_for_conv_models():
    with pytest.raises(UsageError, match=r"hidden=32 applies to model=mlp only \(got model=cnn\)"):
        TrainConfig.create(model="cnn", hidden=[32])
    with pytest.raises(UsageError, match="hidden=50 applies to model=mlp only"):
        TrainConfig.create("fastai", model="resnet")
    with pytest.raises(UsageError, match="model must be one of mlp, cnn, resnet"):
        TrainConfig.create(model="vgg")


def test_cli_errors_are_one_line(tmp_path):
    code, out, err = run_main(["train", "--model", "cnn", "--hidden", "32", "--out", tmp_path / "x"])
    assert code == 2 and "--hidden" in err and "--model" in err and "Traceback" not in err
