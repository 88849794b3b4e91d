"""Conv2d: equal to torch.nn.functional.conv2d (same weight layout) and to autograd, in float64,
over random shapes, kernels, strides and paddings; its errors, init, dtype and cache contract."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import handprop
from handprop import nn
from handprop.nn.conv_gemm import use_shifted
from handprop.nn.window import pair
from handprop.serialize import build_model, load_model, save_model

from .conv_helpers import BEFORE_FORWARD, assert_matches_references, conv_path, pairs, raises

PATHS = ["shifted", "im2col"]

SETTINGS = settings(max_examples=30, deadline=None)


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(seed=st.integers(0, 2**31), n=st.integers(1, 3), c_in=st.integers(1, 4), c_out=st.integers(1, 4),
       kernel=pairs(1, 4), stride=st.one_of(st.just(1), pairs(1, 3)), padding=pairs(0, 2),
       extra=st.tuples(st.integers(0, 5), st.integers(0, 5)), bias=st.booleans())
def test_conv2d_matches_torch_and_autograd(torch, path, seed, n, c_in, c_out, kernel, stride, padding, extra, bias):
    (kh, kw), (ph, pw) = pair(kernel, "k", "test"), pair(padding, "p", "test", minimum=0)
    h, w = max(kh - 2 * ph, 1) + extra[0], max(kw - 2 * pw, 1) + extra[1]  # the kernel fits the padded input
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=bias, dtype=np.float64, rng=seed)
    x = np.random.default_rng(seed + 1).standard_normal((n, c_in, h, w))
    with conv_path(path):
        out = assert_matches_references(torch, conv, x, seed)
    sh, sw = conv.stride
    assert out.shape == (n, c_out, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)


@pytest.mark.parametrize("path", PATHS)
def test_a_small_cnn_matches_torch_and_autograd_end_to_end(torch, path):
    """Conv -> ReLU -> pool -> conv ... -> Flatten -> Linear: every layer reads the previous one's
    channels-last views, and every gradient still equals PyTorch's."""
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1, dtype=np.float64, rng=0), nn.ReLU(),
        nn.Conv2d(4, 6, (3, 2), padding=(1, 0), dtype=np.float64, rng=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(6, 5, 1, bias=False, dtype=np.float64, rng=2), nn.AvgPool2d(2, stride=1),
        nn.Conv2d(5, 3, 2, dtype=np.float64, rng=3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(3, 2, dtype=np.float64, rng=4))
    x = np.random.default_rng(5).standard_normal((3, 2, 15, 17))
    with conv_path(path):
        assert assert_matches_references(torch, model, x).shape == (3, 2)


def test_the_trust_cases_cover_both_paths_with_the_default_thresholds():
    entry = nn.registry.lookup(nn.Conv2d)
    chosen = {c.label: use_shifted(c.kwargs["in_channels"], c.shape[2:], pair(c.kwargs["kernel_size"], "k", "t"),
                                   pair(c.kwargs.get("stride", 1), "s", "t"), pair(c.kwargs.get("padding", 0), "p", "t", 0))
              for c in entry.cases}
    assert set(chosen.values()) == {True, False}, chosen


@pytest.mark.parametrize("path", PATHS)
def test_scratch_reuse_never_changes_a_returned_array_or_a_pending_backward(path):
    """The layer reuses its internal arrays from call to call; what it hands out stays put."""
    conv = nn.Conv2d(8, 4, 3, padding=1, dtype=np.float64, rng=0)
    fresh = nn.Conv2d(8, 4, 3, padding=1, dtype=np.float64, rng=0)
    x1, x2 = np.random.default_rng(1).standard_normal((2, 2, 8, 14, 14))
    g1, g2 = np.random.default_rng(2).standard_normal((2, 2, 4, 14, 14))
    with conv_path(path):
        y1 = conv(x1)
        y1_copy = y1.copy()
        dx1 = conv.backward(g1)
        dx1_copy = dx1.copy()
        conv(x1)
        conv(x2)  # replaces the pending forward: backward must use x2, not x1 nor a mix
        dx2 = conv.backward(g2)
        fresh(x2)
        np.testing.assert_array_equal(dx2, fresh.backward(g2))
        first = nn.Conv2d(8, 4, 3, padding=1, dtype=np.float64, rng=0)
        first(x1)
        first.backward(g1)
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(dx1, dx1_copy)
    np.testing.assert_allclose(conv.weight.grad, fresh.weight.grad + first.weight.grad, rtol=1e-13)


def test_output_is_a_channels_last_view_that_the_next_conv_reads_without_a_copy():
    conv = nn.Conv2d(3, 8, 3, padding=1, rng=0)
    out = conv(np.ones((2, 3, 5, 5), np.float32))
    assert out.shape == (2, 8, 5, 5)
    assert out.transpose(0, 2, 3, 1).flags.c_contiguous  # (N, H, W, C) memory
    g = conv.backward(np.ones_like(out))
    assert g.shape == (2, 3, 5, 5) and g.strides[1] == g.itemsize  # dL/dx too: channels innermost


def test_non_contiguous_inputs_give_the_same_result():
    conv = nn.Conv2d(3, 4, 3, stride=2, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 18))
    strided = x[:, :, :, ::2]
    np.testing.assert_array_equal(conv(strided), conv(np.ascontiguousarray(strided)))


def test_weight_layout_is_pytorchs(torch):
    conv = nn.Conv2d(3, 8, (5, 3), dtype=np.float64, rng=0)
    assert conv.weight.shape == (8, 3, 5, 3) and conv.bias.shape == (8,)
    tconv = torch.nn.Conv2d(3, 8, (5, 3), dtype=torch.float64)
    with torch.no_grad():  # the arrays go across unpermuted
        tconv.weight.copy_(torch.from_numpy(conv.weight.data))
        tconv.bias.copy_(torch.from_numpy(conv.bias.data))
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 7))
    np.testing.assert_allclose(conv(x), tconv(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-14)


def test_conv2d_gradcheck_from_float32():
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=0)
    report = handprop.gradcheck(conv, np.random.default_rng(1).standard_normal((2, 2, 5, 6)))
    assert report.passed, str(report)
    assert [(r.name, r.shape) for r in report.rows] == [("input", (2, 2, 5, 6)), ("weight", (3, 2, 3, 3)),
                                                        ("bias", (3,))]
    assert conv.weight.dtype == np.float32


def test_float32_by_default_end_to_end():
    conv = nn.Conv2d(2, 3, 3)
    assert conv.weight.dtype == conv.bias.dtype == np.float32
    out = conv(np.ones((2, 2, 6, 6), np.float32))
    assert out.dtype == np.float32
    assert conv.backward(np.ones_like(out)).dtype == np.float32
    assert conv.weight.grad.dtype == conv.bias.grad.dtype == np.float32
    assert nn.Conv2d(2, 3, 3, dtype=np.float64)(np.ones((1, 2, 3, 3))).dtype == np.float64


@pytest.mark.parametrize("path", PATHS)
def test_input_grad_false_returns_none_and_still_fills_the_parameter_gradients(path):
    x = np.random.default_rng(0).standard_normal((2, 1, 7, 7))
    g = np.random.default_rng(1).standard_normal((2, 4, 7, 7))
    full, first = (nn.Conv2d(1, 4, 3, padding=1, dtype=np.float64, rng=0) for _ in range(2))
    with conv_path(path):
        full(x)
        assert full.backward(g) is not None
        first(x)
        assert first.backward(g, input_grad=False) is None
    for a, b in zip(first.parameters(), full.parameters()):
        assert np.abs(a.grad).max() > 0
        np.testing.assert_array_equal(a.grad, b.grad)


def test_parameter_gradients_accumulate_until_zero_grad():
    conv = nn.Conv2d(2, 3, 2, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4))
    grads = []
    for _ in range(2):
        out = conv(x)
        conv.backward(np.ones_like(out))
        grads.append([p.grad.copy() for p in conv.parameters()])
    for once, twice in zip(*grads):
        np.testing.assert_allclose(twice, 2 * once, rtol=1e-14)
    conv.zero_grad()
    assert all(not p.grad.any() for p in conv.parameters())


@pytest.mark.parametrize("path", PATHS)
def test_eval_mode_keeps_nothing_for_backward(path):
    conv = nn.Conv2d(1, 2, 3, padding=1, rng=0).eval()
    with conv_path(path):
        out = conv(np.ones((2, 1, 5, 5), np.float32))
    assert "_cache" not in vars(conv)
    assert not conv._scratch._arrays, "eval-mode inference left internal arrays behind"
    with pytest.raises(RuntimeError, match=re.escape(BEFORE_FORWARD)):
        conv.backward(np.ones_like(out))
    conv.train()
    np.testing.assert_array_equal(conv(np.ones((2, 1, 5, 5), np.float32)), out)
    assert "_cache" in vars(conv)


def test_default_init_is_pytorchs():
    conv = nn.Conv2d(16, 64, 5, dtype=np.float64, rng=0)
    bound = 1 / math.sqrt(16 * 5 * 5)  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w, b = conv.weight.data, conv.bias.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.5 * bound
    np.testing.assert_array_equal(nn.Conv2d(16, 64, 5, rng=3).weight.data, nn.Conv2d(16, 64, 5, rng=3).weight.data)
    handprop.manual_seed(7)
    first = nn.Conv2d(1, 2, 3).weight.data
    handprop.manual_seed(7)
    np.testing.assert_array_equal(nn.Conv2d(1, 2, 3).weight.data, first)


def test_repr():
    assert repr(nn.Conv2d(1, 32, 3)) == "Conv2d(1 -> 32, kernel_size=3)"
    assert repr(nn.Conv2d(1, 32, 3, stride=2, padding=1)) == "Conv2d(1 -> 32, kernel_size=3, stride=2, padding=1)"
    assert (repr(nn.Conv2d(4, 8, (3, 1), stride=(2, 1), padding=(1, 0), bias=False))
            == "Conv2d(4 -> 8, kernel_size=(3, 1), stride=(2, 1), padding=(1, 0), bias=False)")


# -- errors --------------------------------------------------------------------------------------

def test_a_flat_batch_is_refused_with_the_expected_shape():
    with raises("Conv2d(1 -> 32, kernel_size=3) expected input (N, 1, H, W), got (64, 784)"):
        nn.Conv2d(1, 32, 3)(np.zeros((64, 784), np.float32))


def test_wrong_channel_count_is_refused():
    with raises("Conv2d(3 -> 8, kernel_size=3) expected input (N, 3, H, W), got (2, 1, 8, 8)"):
        nn.Conv2d(3, 8, 3)(np.zeros((2, 1, 8, 8), np.float32))


@pytest.mark.parametrize("layer,shape,message", [
    (dict(kernel_size=5), (2, 1, 3, 9), "Conv2d(1 -> 4, kernel_size=5): input 3x9 is smaller than the 5x5 kernel"),
    (dict(kernel_size=5, padding=1), (2, 1, 2, 2),
     "Conv2d(1 -> 4, kernel_size=5, padding=1): input 2x2 (padded 4x4) is smaller than the 5x5 kernel"),
    (dict(kernel_size=(1, 4)), (1, 1, 5, 3), "Conv2d(1 -> 4, kernel_size=(1, 4)): input 5x3 is smaller than the 1x4 kernel"),
])
def test_an_input_smaller_than_the_kernel_is_refused(layer, shape, message):
    with raises(message):
        nn.Conv2d(1, 4, **layer)(np.zeros(shape, np.float32))


def test_dtype_mismatch_is_refused():
    with raises("Conv2d(1 -> 2, kernel_size=3) expected float32 input, got float64 "
                "(convert with x.astype(np.float32) or model.to(np.float64))"):
        nn.Conv2d(1, 2, 3)(np.zeros((1, 1, 4, 4)))


@pytest.mark.parametrize("args,kwargs,message", [
    ((0, 4, 3), {}, "Conv2d: in_channels must be a positive integer, got 0"),
    ((1, 2.0, 3), {}, "Conv2d: out_channels must be a positive integer, got 2.0"),
    ((True, 2, 3), {}, "Conv2d: in_channels must be a positive integer, got True"),
    ((1, 4, 0), {}, "Conv2d: kernel_size must be a positive integer or a pair of them, got 0"),
    ((1, 4, 2.5), {}, "Conv2d: kernel_size must be a positive integer or a pair of them, got 2.5"),
    ((1, 4, (3, 3, 3)), {}, "Conv2d: kernel_size must be a positive integer or a pair of them, got (3, 3, 3)"),
    ((1, 4, "3"), {}, "Conv2d: kernel_size must be a positive integer or a pair of them, got '3'"),
    ((1, 4, 3), {"stride": (1, 0)}, "Conv2d: stride must be a positive integer or a pair of them, got (1, 0)"),
    ((1, 4, 3), {"padding": -1}, "Conv2d: padding must be an integer >= 0 or a pair of them, got -1"),
    ((1, 4, 3), {"bias": "yes"}, "Conv2d: bias must be True or False, got 'yes'"),
])
def test_bad_arguments_are_refused(args, kwargs, message):
    with raises(message):
        nn.Conv2d(*args, **kwargs)


def test_backward_checks_the_gradient_shape_and_needs_a_forward():
    conv = nn.Conv2d(1, 2, 3, rng=0)
    with pytest.raises(RuntimeError, match=re.escape(BEFORE_FORWARD)):
        conv.backward(np.zeros((1, 2, 2, 2), np.float32))
    conv(np.zeros((1, 1, 4, 4), np.float32))
    with raises("Conv2d(1 -> 2, kernel_size=3).backward expected grad_output of shape (1, 2, 2, 2), got (1, 2, 4, 4)"):
        conv.backward(np.zeros((1, 2, 4, 4), np.float32))


# -- model files --------------------------------------------------------------------------------

def test_a_cnn_round_trips_through_a_model_file(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, (3, 2), stride=(2, 1), padding=(1, 0), rng=0), nn.ReLU(),
                          nn.MaxPool2d(2), nn.AvgPool2d((1, 2), stride=1), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 3, rng=1))
    spec = [nn.registry.layer_config(layer) for layer in model]
    save_model(tmp_path / "cnn.npz", model, spec)
    loaded, _, meta, _ = load_model(tmp_path / "cnn.npz")
    assert meta["spec"][0]["kernel_size"] == [3, 2]  # JSON has no tuples
    assert repr(loaded) == repr(model)
    x = np.random.default_rng(0).standard_normal((2, 1, 9, 8)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))


@pytest.mark.parametrize("config,message", [
    ({"kernel_size": [3, 0]}, "kernel_size must be a positive integer or a pair of them, got [3, 0]"),
    ({"kernel_size": [3, 3, 3]}, "kernel_size must be a positive integer or a pair of them, got [3, 3, 3]"),
    ({"kernel_size": 3, "padding": [-1, 0]}, "padding must be an integer >= 0 or a pair of them, got [-1, 0]"),
    ({"kernel_size": 3, "dilation": 2}, "unknown argument 'dilation'"),
    ({}, "missing argument 'kernel_size'"),
])
def test_bad_conv_configs_are_refused_naming_the_layer(config, message):
    spec = [{"type": "Conv2d", "in_channels": 1, "out_channels": 2, **config}]
    with pytest.raises(ValueError, match=r"^model spec \(Sequential\) layer 0 \(Conv2d\): " + re.escape(message)):
        build_model(spec)


@pytest.mark.parametrize("kernel, stride, size", [((3, 3), (2, 2), (9, 9)), ((3, 3), (1, 1), (6, 5)),
                                                  ((2, 3), (2, 1), (7, 6)), ((1, 1), (3, 3), (7, 7)),
                                                  ((3, 2), (3, 2), (9, 8)), ((5, 5), (2, 3), (10, 12))])
def test_add_patches_is_the_adjoint_of_windows_offset_by_offset(kernel, stride, size):
    """Blocks of offsets added at once land where add_windows puts each offset, margins included."""
    from handprop.nn.window import add_patches, add_windows, windows
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *size, 3))
    patches = rng.standard_normal(windows(x, kernel, stride).shape)
    expected = add_windows(np.zeros_like(x), lambda i, j: patches[:, :, :, i, j], kernel, stride)
    np.testing.assert_allclose(add_patches(np.zeros_like(x), patches, stride), expected, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("kwargs", [{"stride": 2, "padding": 1}, {"padding": 1}, {"stride": 2, "bias": False}])
def test_eval_runs_a_large_batch_in_chunks_with_the_training_outputs(monkeypatch, kwargs):
    """Chunks bounded by EVAL_CHUNK_BYTES (here a few images each, the last one short) give the
    whole batch's outputs, on both the im2col and the shifted-GEMM path, and keep nothing."""
    from handprop.nn import conv as conv_module
    layer = nn.Conv2d(8, 5, 3, rng=0, **kwargs)
    x = np.random.default_rng(1).standard_normal((11, 8, 9, 9)).astype(np.float32)
    expected = layer(x)
    monkeypatch.setattr(conv_module, "EVAL_CHUNK_BYTES", 20000)  # 2, 3 or 4 images a chunk
    layer.eval()
    got = layer(x)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(Exception, match="forward"):
        layer.backward(np.ones_like(got))
