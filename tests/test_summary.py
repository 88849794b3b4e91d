"""summary(): shapes, parameters and multiply-adds against hand counts, for an MLP and a CNN."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import handprop
from handprop import nn
from handprop.commands import summary as summary_command
from handprop.summary import summary


# -- stand-ins for the convolution layers another branch adds (looked up by class name) -----------

class Conv2d(nn.Module):
    """A valid (no padding), stride-1 convolution; weight (out, in, k, k) as PyTorch's."""

    def __init__(self, in_channels, out_channels, kernel_size):
        rng = np.random.default_rng(0)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(rng.standard_normal((out_channels, in_channels, kernel_size, kernel_size))
                                   .astype(np.float32))
        self.bias = nn.Parameter(np.zeros(out_channels, np.float32))

    def forward(self, x):
        k = self.weight.shape[-1]
        windows = sliding_window_view(x, (k, k), axis=(2, 3))  # (N, C, H', W', k, k)
        return np.einsum("nchwij,ocij->nohw", windows, self.weight.data) + self.bias.data[:, None, None]


class MaxPool2d(nn.Module):
    def forward(self, x):
        n, c, h, w = x.shape
        return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


class Flatten(nn.Module):
    def forward(self, x):
        return x.reshape(len(x), -1)


def _cnn():
    return nn.Sequential(Conv2d(1, 8, 3), nn.ReLU(), MaxPool2d(), Conv2d(8, 16, 3), nn.ReLU(), Flatten(),
                         nn.Linear(16 * 11 * 11, 10))


def _mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def test_mlp_counts_match_hand_computed_ones():
    s = summary(_mlp(), (784,))
    assert [r.name for r in s.rows] == ["layers.0", "layers.1", "layers.2"]
    assert [r.output_shape for r in s.rows] == [(1, 256), (1, 256), (1, 10)]
    assert [r.params for r in s.rows] == [784 * 256 + 256, 0, 256 * 10 + 10]
    assert [r.multiply_adds for r in s.rows] == [784 * 256, 0, 256 * 10]
    assert s.total_params == 203_530 and s.total_multiply_adds == 203_264
    assert s.param_bytes == 203_530 * 4 and s.buffer_values == 0


def test_cnn_counts_match_hand_computed_ones():
    s = summary(_cnn(), (1, 28, 28))
    assert [r.output_shape for r in s.rows] == [(1, 8, 26, 26), (1, 8, 26, 26), (1, 8, 13, 13),
                                                (1, 16, 11, 11), (1, 16, 11, 11), (1, 1936), (1, 10)]
    conv1, conv2, linear = 8 * 26 * 26 * (1 * 3 * 3), 16 * 11 * 11 * (8 * 3 * 3), 1936 * 10
    assert [r.multiply_adds for r in s.rows] == [conv1, 0, 0, conv2, 0, 0, linear]
    assert [r.params for r in s.rows] == [8 * 9 + 8, 0, 0, 16 * 72 + 16, 0, 0, 1936 * 10 + 10]
    assert s.total_params == 80 + 1168 + 19_370 and s.total_multiply_adds == 48_672 + 139_392 + 19_360


def test_norm_layers_buffers_and_modes():
    model = nn.Sequential(nn.Linear(20, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
    model[3].eval()
    before = model.state_dict()
    s = summary(model, (20,))
    assert [r.multiply_adds for r in s.rows] == [160, 8, 0, 0, 16]
    assert s.total_params == 168 + 16 + 18 and s.buffer_values == 8 + 8 + 1
    assert [m.training for m in model.modules()] == [True, True, True, True, False, True]
    for k, v in model.state_dict().items():  # eval mode: the running statistics were not touched
        np.testing.assert_array_equal(v, before[k])
    assert all("forward" not in vars(m) for m in model.modules())


def test_a_layer_used_twice_has_two_rows_and_counts_once():
    shared = nn.Linear(4, 4)
    s = summary(nn.Sequential(shared, nn.Tanh(), shared), (4,))
    assert [r.name for r in s.rows] == ["layers.0", "layers.1", "layers.0"]
    assert s.total_params == 20 and s.total_multiply_adds == 32


def test_a_type_without_a_rule_is_marked_and_left_out():
    class Scale(nn.Module):
        def __init__(self):
            self.gain = nn.Parameter(np.ones(3, np.float32))

        def forward(self, x):
            return x * self.gain.data

    s = summary(nn.Sequential(nn.Linear(2, 3), Scale()), (2,))
    assert s.rows[1].multiply_adds is None and s.total_multiply_adds == 6
    text = str(s)
    assert "?: no multiply-add rule for Scale (left out of the total)" in text


def test_the_table():
    text = str(summary(_mlp(), (784,)))
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "params", "mult-adds"]
    assert lines[2].split() == ["layers.0", "Linear(784", "->", "256)", "(N,", "256)", "200,960", "200,704"]
    assert lines[6].split() == ["total", "203,530", "203,264"]
    assert "input (N, 784); multiply-adds are per sample, parameters 795.0 KiB" in text
    assert len({len(line) for line in lines[:7]}) == 1  # the columns line up


@pytest.mark.parametrize("shape", [(), (0,), (784, -1), "784", (2.5,), (True,)])
def test_bad_input_shapes_are_clear_errors(shape):
    with pytest.raises(ValueError, match="summary: input_shape must be a tuple of positive integers"):
        summary(_mlp(), shape)


def test_a_shape_the_model_rejects_is_a_clear_error():
    with pytest.raises(ValueError, match=r"summary: the model rejects an input of shape \(N, 100\): .*784"):
        summary(_mlp(), (100,))


def _parse(argv):
    parser = argparse.ArgumentParser()
    summary_command.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_command_reads_a_model_file_or_a_run_directory(tmp_path, capsys):
    handprop.save(_mlp(), tmp_path / "model.npz")
    assert summary_command.run(_parse([str(tmp_path)])) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path / 'model.npz'}:\n") and "203,530" in out


def test_the_command_builds_from_flags_and_takes_an_input_shape(capsys):
    assert summary_command.run(_parse(["--input-shape", "1,28,28"]), lambda args: _cnn()) == 0
    assert "207,424" in capsys.readouterr().out
    with pytest.raises(ValueError, match="cannot infer the input shape of a model starting with Conv2d"):
        summary_command.run(_parse([]), lambda args: _cnn())
    with pytest.raises(ValueError, match="give a MODEL.npz or a run directory"):
        summary_command.run(_parse([]))
    with pytest.raises(SystemExit):
        _parse(["--input-shape", "1,x"])


def test_the_library_conv2d_when_present_counts_like_the_stand_in():
    if not hasattr(nn, "Conv2d"):
        pytest.skip("nn.Conv2d is on another branch; the stand-in above covers the rule until it lands")
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(16 * 11 * 11, 10))
    s = summary(model, (1, 28, 28))
    assert [r.multiply_adds for r in s.rows] == [48_672, 0, 0, 139_392, 0, 0, 19_360]
    assert s.total_params == 20_618
