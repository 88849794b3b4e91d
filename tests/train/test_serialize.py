"""Atomic writes and .npz weights (handprop.serialize): never torn, never pickled."""
from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from handprop import nn
from handprop.serialize import atomic_write, build_model, load_arrays, load_model, save_arrays, save_model


def _hammer(path, write, read, n_writes=150):
    """A writer rewrites ``path`` ``n_writes`` times while a reader keeps loading it; every read
    must parse and be one of the written versions."""
    write(0)
    errors, reads, done = [], [], threading.Event()

    def reader():
        while not done.is_set():
            try:
                reads.append(read())
            except Exception as e:  # noqa: BLE001 - any failure is a torn read
                errors.append(repr(e))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(1, n_writes + 1):
            write(i)
    finally:
        done.set()
        t.join()
    assert not errors, errors[:3]
    assert len(reads) > 10, "the reader barely ran"
    assert all(0 <= r <= n_writes for r in reads)
    assert reads == sorted(reads), "a reader never goes back to an older version"
    assert not [p for p in os.listdir(path.parent) if p.startswith(".")], "temporary files left"


def test_metrics_json_is_never_torn(tmp_path):
    path = tmp_path / "metrics.json"

    def write(i):
        # big enough to take several write() calls; every element names the version
        with atomic_write(path, "w") as f:
            json.dump({"version": i, "history": [{"epoch": i, "loss": float(i)}] * (2000 + 37 * i)}, f)

    def read():
        data = json.loads(path.read_text())
        assert all(r["epoch"] == data["version"] for r in data["history"])
        return data["version"]

    _hammer(path, write, read)


def test_model_npz_is_never_torn(tmp_path):
    path = tmp_path / "model.npz"

    def write(i):
        save_arrays(path, {"w": np.full((300, 100), i, dtype=np.float32), "b": np.full(100 + i, i)}, {"v": i})

    def read():
        arrays, meta = load_arrays(path)
        v = meta["v"]
        assert (arrays["w"] == v).all() and arrays["b"].shape == (100 + v,) and (arrays["b"] == v).all()
        return v

    _hammer(path, write, read, n_writes=80)


def test_atomic_write_replaces_and_uses_normal_permissions(tmp_path):
    path = tmp_path / "x.bin"
    with atomic_write(path) as f:
        f.write(b"one")
    with atomic_write(path) as f:
        f.write(b"two")
    assert path.read_bytes() == b"two"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, "readable like any file the user writes"


def test_save_and_load_model(tmp_path):
    from handprop.data import Normalize

    spec = [{"type": "Linear", "in_features": 6, "out_features": 4}, {"type": "LeakyReLU", "negative_slope": 0.2},
            {"type": "Linear", "in_features": 4, "out_features": 3}]
    model = build_model(spec)
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.data.shape)
    x = rng.random((5, 6)).astype(np.float32)
    norm = Normalize().fit(x)
    save_model(tmp_path / "m.npz", model, spec, norm, {"kind": "model"})
    back, norm2, meta, _ = load_model(tmp_path / "m.npz")
    assert meta["kind"] == "model" and meta["spec"] == spec
    np.testing.assert_array_equal(back(norm2(x)), model(norm(x)))
    assert isinstance(back[1], nn.LeakyReLU)


def test_build_model_rejects_unknown_layers(tmp_path):
    with pytest.raises(ValueError, match="unknown layer type"):
        build_model([{"type": "Conv3d"}])
    with pytest.raises(ValueError, match="layer 0"):
        build_model([{"type": "Linear", "in_features": 3}])
    save_arrays(tmp_path / "plain.npz", {"w": np.zeros(2)})
    with pytest.raises(ValueError, match="no model spec"):
        load_model(tmp_path / "plain.npz")


def test_meta_is_strict_json_both_ways(tmp_path):
    """The writer never writes NaN or infinity into the metadata; the reader refuses them."""
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        save_arrays(tmp_path / "nan.npz", {"w": np.zeros(2)}, {"loss": float("nan")})
    assert not (tmp_path / "nan.npz").exists()


def test_checkpoint_history_with_a_non_finite_loss_is_written_as_null(tmp_path):
    """A validation loss can overflow while training goes on: the checkpoint still writes, with null."""
    from types import SimpleNamespace

    from handprop.train.run import Run

    spec = [{"type": "Linear", "in_features": 3, "out_features": 2}]
    from handprop.train.config import TrainConfig

    run = SimpleNamespace(cfg=TrainConfig.create(), out=tmp_path, spec=spec, data=SimpleNamespace(normalize=None),
                          learn=SimpleNamespace(history=[{"epoch": 1, "valid_loss": float("inf")}]),
                          wall_time=lambda: 1.0, blas_threads=1, is_root=True, world_size=1)
    state = {"model": build_model(spec).state_dict(), "opt": {}, "epoch": 1, "train_step": 4}
    Run._save_checkpoint(run, "last.npz", state)
    assert load_arrays(tmp_path / "last.npz")[1]["history"] == [{"epoch": 1, "valid_loss": None}]
