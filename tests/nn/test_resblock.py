"""ResBlock: the shortcut's forward and backward, ceil-mode pooling, model files, errors.
(Its gradients against central differences, autograd and PyTorch are the trust matrix's cases.)"""
from __future__ import annotations

import numpy as np
import pytest

import handprop
from handprop import nn
from handprop.nn.resblock import pool_backward, pool_forward


def _input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _residual_silenced(block: nn.ResBlock) -> nn.ResBlock:
    """The residual branch outputs zero: its second conv's weight and its BatchNorm's bias are 0."""
    block.conv2.weight.data[...] = 0
    block.bn2.bias.data[...] = 0
    return block


def test_identity_shortcut_passes_input_and_gradient_through():
    block = _residual_silenced(nn.ResBlock(4, 4, rng=0))
    assert block.idconv is None
    x, g = _input((3, 4, 6, 5)), _input((3, 4, 6, 5), 1)
    np.testing.assert_allclose(block(x), np.maximum(x, 0), atol=1e-6)
    # the residual branch sends nothing back (its last conv is zero): all of dL/dx is the shortcut's
    np.testing.assert_allclose(block.backward(g), g * (x > 0), atol=1e-6)


def test_backward_sums_both_branches():
    block = nn.ResBlock(3, 3, rng=1)
    x, g = _input((2, 3, 5, 5)), _input((2, 3, 5, 5), 2)
    block(x)
    total = block.backward(g)
    out = block(x)
    shortcut_only = g * (out > 0)  # act2's backward: what the identity branch receives
    assert not np.allclose(total, shortcut_only, atol=1e-3)  # the residual branch contributes
    block.conv1.zero_grad()
    block(x)
    assert block.backward(g, input_grad=False) is None
    assert np.abs(block.conv1.weight.grad).max() > 0  # parameters still get their gradients


@pytest.mark.parametrize("ni, nf, size, out", [(2, 4, 7, 4), (4, 4, 8, 4), (3, 5, 28, 14)])
def test_stride_2_halves_rounding_up_as_the_strided_conv(ni, nf, size, out):
    block = nn.ResBlock(ni, nf, stride=2, rng=0)
    assert (block.idconv is None) == (ni == nf)
    assert block(_input((2, ni, size, size))).shape == (2, nf, out, out)


def test_ceil_mode_pool_averages_the_pixels_inside_the_image():
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    np.testing.assert_allclose(pool_forward(x)[0, 0], [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8]])
    g = np.ones((1, 1, 2, 2), np.float32)
    # each input pixel gets 1/(its window's pixel count): 1/4 in the full window, 1/2 on the edges, 1 in the corner
    np.testing.assert_allclose(pool_backward(g, x.shape)[0, 0], [[.25, .25, .5], [.25, .25, .5], [.5, .5, 1]])


def test_model_files_rebuild_resblocks_with_and_without_a_shortcut_conv(tmp_path):
    model = nn.Sequential(nn.ResBlock(1, 4, 2, rng=0), nn.ResBlock(4, 4, rng=1), nn.ResBlock(4, 4, 2, "gelu", rng=2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3, rng=3))
    x = _input((5, 1, 9, 9))
    model(x)  # moves the running statistics off their start
    model.eval()
    handprop.save(model, tmp_path / "m.npz")
    loaded = handprop.load(tmp_path / "m.npz").eval()
    assert [type(m).__name__ for m in loaded] == [type(m).__name__ for m in model]
    assert loaded[1].idconv is None and loaded[2].act == "gelu"
    np.testing.assert_array_equal(loaded(x), model(x))


@pytest.mark.parametrize("kwargs, match", [
    ({"ni": 0, "nf": 4}, "ni must be a positive integer"),
    ({"ni": 2, "nf": 2.0}, "nf must be a positive integer"),
    ({"ni": 2, "nf": 4, "stride": 3}, "stride must be 1 or 2"),
    ({"ni": 2, "nf": 4, "act": "nope"}, "act must be one of"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.ResBlock(**kwargs)


def test_wrong_input_is_a_value_error():
    with pytest.raises(ValueError, match=r"expected input \(N, 3, H, W\), got \(2, 4, 5, 5\)"):
        nn.ResBlock(3, 8)(_input((2, 4, 5, 5)))
