"""`handprop gradcheck`: the trust matrix agrees everywhere, and catches a wrong backward."""
from __future__ import annotations

import numpy as np

from handprop import nn
from handprop.cli import main
from handprop.trust import TOLERANCE, builtin_cases, trust_matrix


def test_every_builtin_layer_and_loss_is_in_the_matrix():
    covered = {type(c.module) for c in builtin_cases()}
    expected = {nn.Linear, nn.ReLU, nn.LeakyReLU, nn.GeneralReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.LogSoftmax,
                nn.Sequential, nn.MSELoss, nn.CrossEntropyLoss, nn.NLLLoss,
                nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.Dropout,
                nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.ResBlock}
    assert covered == expected


def test_matrix_agrees_with_all_three_references(torch):
    columns, rows = trust_matrix(seed=3)
    assert columns == ["central diff.", "autograd", "PyTorch"]
    for name, errors in rows:
        assert all(e is not None and e <= TOLERANCE for e in errors), (name, errors)


def test_cli_prints_the_matrix(torch, capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert "CrossEntropy(mean)" in out and "MISMATCH" not in out
    n = len(builtin_cases())
    assert n >= 21 and f"{n}/{n} layers and losses agree with every reference" in out


def test_a_wrong_backward_is_reported(torch, capsys, monkeypatch):
    right = nn.Tanh.backward
    monkeypatch.setattr(nn.Tanh, "backward", lambda self, g, input_grad=True: 1.01 * right(self, g, input_grad))
    assert main(["gradcheck"]) == 1
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("Tanh"))
    assert line.endswith("MISMATCH")
    errors = [float(v) for v in line.split()[1:4]]
    assert all(e > 1e-3 for e in errors)
    assert np.isfinite(errors).all()
