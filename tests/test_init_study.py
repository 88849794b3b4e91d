"""init-study on real MNIST reproduces the notebooks' claims; LSUV gives unit-variance outputs."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from handprop import nn
from handprop.commands import init_study as init_study_command
from handprop.data import Normalize, mnist, to_float_flat
from handprop.init_study import init_study
from handprop.nn.init import lsuv_

from train.helpers import PNG_SIGNATURE


@pytest.fixture(scope="module")
def images(data_root):
    (x, _), _ = mnist(root=data_root / "mnist", download=False)
    x = to_float_flat(x[:256])
    return Normalize().fit(x)(x)


@pytest.fixture(scope="module")
def study(images):
    return init_study(images)  # depth 50, width 256, 5 networks per init


def test_normal_1_explodes_within_the_depth(study):
    for activation in ("ReLU", "GeneralReLU"):
        stds = study.stds["N(0, 1)", activation]
        assert stds[0] > 10 * study.input_std and np.all(np.diff(stds[:20]) > 0)
        assert not np.all(np.isfinite(stds)) and np.isinf(stds).any()  # inf, then NaN


def test_small_normals_collapse_towards_zero(study):
    relu = study.stds["N(0, 0.01)", "ReLU"]
    assert np.all(np.diff(relu[relu > 0]) < 0) and relu[-1] < 1e-30
    assert study.stds["N(0, 1e-6) (EPFL)", "ReLU"][0] < 1e-4
    assert study.stds["N(0, 0.01)", "GeneralReLU"][-1] < 0.1 * study.input_std  # floored by the -0.4 shift


def test_kaiming_relu_keeps_the_input_std_and_xavier_halves_the_variance(study):
    kaiming = study.stds["Kaiming", "ReLU"]
    assert 0.5 <= kaiming[-1] / study.input_std <= 2
    assert np.all((0.5 * study.input_std <= kaiming) & (kaiming <= 2 * study.input_std))
    xavier = study.stds["Xavier", "ReLU"]
    assert xavier[-1] < 1e-6 and xavier[9] / xavier[19] == pytest.approx(2 ** 5, rel=0.5)  # x 1/sqrt(2) per block


def test_lsuv_stays_put_and_pytorch_default_shrinks(study):
    for activation in ("ReLU", "GeneralReLU"):
        lsuv = study.stds["LSUV", activation]
        assert np.all((0.4 < lsuv) & (lsuv < 1))  # each Linear's output has std 1; the activation takes some
    assert study.stds["PyTorch default", "ReLU"][-1] < 0.1 * study.input_std


def test_the_table_shows_depths_1_10_25_50(study):
    lines = study.table().splitlines()
    assert lines[1].split() == ["1", "10", "25", "50"]
    kaiming = next(line for line in lines if line.strip().startswith("Kaiming"))
    assert [float(v) for v in kaiming.split()[1:]] == pytest.approx(study.stds["Kaiming", "ReLU"][[0, 9, 24, 49]],
                                                                    rel=1e-2)
    assert "nan" in next(line for line in lines if line.strip().startswith("N(0, 1) "))


def test_lsuv_gives_every_linear_unit_std_and_restores_modes(images):
    model = nn.Sequential(nn.Linear(784, 64, rng=0), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 32, rng=1),
                          nn.Tanh(), nn.Linear(32, 10, rng=2))
    handle = model[3].register_forward_hook(lambda *a: None)
    stds = lsuv_(model, images)
    assert list(stds) == ["layers.0", "layers.3", "layers.5"]
    assert all(abs(s - 1) <= 0.01 for s in stds.values())
    model.eval()
    h = images
    for i, layer in enumerate(model):
        h = layer(h)
        if i in (0, 3, 5):
            assert abs(h.std(dtype=np.float64) - 1) <= 0.011
    assert model[3].forward.__func__.__name__ == "_forward_with_hooks"  # its hook survived
    handle.remove()
    assert all("forward" not in vars(m) for m in model.modules())
    model.train()
    lsuv_(model, images)
    assert all(m.training for m in model.modules())


def test_lsuv_bad_inputs_are_clear_errors(images):
    with pytest.raises(ValueError, match="lsuv_: x must be a batch of at least 2 samples"):
        lsuv_(nn.Sequential(nn.Linear(784, 4)), images[:1])
    with pytest.raises(ValueError, match="lsuv_: the model has no Linear/Conv1d/Conv2d/Conv3d layer"):
        lsuv_(nn.Sequential(nn.ReLU()), images)
    dead = nn.Sequential(nn.Linear(784, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    dead[0].bias.data[...] = -1e6
    with pytest.raises(ValueError, match=r"lsuv_: the output of layers.2 \(Linear\(4 -> 2, bias=False\)\) has std 0"):
        lsuv_(dead, images)
    with pytest.raises(ValueError, match="init_study: depth must be a positive integer"):
        init_study(images, depth=0)


def test_the_command_prints_the_table_and_writes_the_plot(data_root, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    init_study_command.add_arguments(parser)
    args = parser.parse_args(["--depth", "12", "--draws", "1", "--batch", "64", "--offline",
                              "--data-dir", str(data_root / "mnist"), "--out", str(tmp_path)])
    assert init_study_command.run(args) == 0
    out = capsys.readouterr().out
    assert "64 MNIST images" in out and out.splitlines()[1].split() == ["1", "10", "12"]
    assert (tmp_path / "init_study.png").read_bytes().startswith(PNG_SIGNATURE)


def test_the_pooled_std_is_the_std_of_all_draws_activations_together(images):
    from handprop.init_study import _activation_moments, _pooled_std, _stack

    outputs, moments = [], []
    for draw in range(3):
        model = _stack(784, 2, 16, "relu", "default", np.random.default_rng(draw))
        moments.append(_activation_moments(model, images))
        outputs.append(model[3](model[2](model[1](model[0](images)))))
    pooled = _pooled_std(np.array(moments))
    assert pooled[-1] == pytest.approx(np.concatenate(outputs).astype(np.float64).std(), rel=1e-5)
    assert _pooled_std(np.array([[[np.inf, np.inf]], [[0.0, 1.0]]]))[0] == np.inf
