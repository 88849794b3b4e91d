"""train()/eval() switch BatchNorm and Dropout inside a model; the normalisation layers compose."""
from __future__ import annotations

import numpy as np
import pytest

import handprop
from handprop import nn


def _model():
    return nn.Sequential(nn.Linear(6, 5, dtype=np.float64, rng=0), nn.BatchNorm1d(5, dtype=np.float64),
                         nn.ReLU(), nn.Dropout(0.5, rng=1), nn.Linear(5, 3, dtype=np.float64, rng=2))


def test_eval_switches_batchnorm_to_running_statistics_and_dropout_off():
    model = _model()
    rng = np.random.default_rng(0)
    for _ in range(4):
        model(rng.standard_normal((16, 6)) * 2 + 1)
    x = rng.standard_normal((8, 6))
    assert not np.array_equal(model(x), model(x)), "training: a new dropout mask each call"
    assert not np.allclose(model(x)[:2], model(x[:2])), "training: each sample depends on the batch"
    state = model.state_dict()

    model.eval()
    out = model(x)
    np.testing.assert_array_equal(model(x), out)  # deterministic
    np.testing.assert_array_equal(model(x[:2]), out[:2])  # per sample
    lin0, bn, lin1 = model[0], model[1], model[4]
    hidden = (x @ lin0.weight.data + lin0.bias.data - bn.running_mean) / np.sqrt(bn.running_var + bn.eps)
    expected = np.maximum(hidden * bn.weight.data + bn.bias.data, 0) @ lin1.weight.data + lin1.bias.data
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=f"eval changed {name}")
    with pytest.raises(RuntimeError, match="after a forward in eval mode"):
        model.backward(np.ones_like(out))

    model.train()
    assert not np.array_equal(model(x), model(x))
    assert int(bn.num_batches_tracked) == 4 + 2 + 2 + 2  # every training forward, no eval one


def test_gradcheck_passes_through_normalisation_layers_of_a_float32_model():
    model = nn.Sequential(nn.Linear(4, 6, rng=0), nn.BatchNorm1d(6), nn.Tanh(), nn.LayerNorm(6),
                          nn.Dropout(0.0), nn.Linear(6, 2, rng=1))
    report = handprop.gradcheck(model, np.random.default_rng(0).standard_normal((5, 4)))
    assert report.passed, str(report)
    assert [r.name for r in report.rows] == ["input", "layers.0.weight", "layers.0.bias", "layers.1.weight",
                                             "layers.1.bias", "layers.3.weight", "layers.3.bias",
                                             "layers.5.weight", "layers.5.bias"]
