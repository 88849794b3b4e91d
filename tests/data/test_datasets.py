"""Locating, verifying and loading datasets: real MNIST and Fashion-MNIST, search order, errors."""
from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from handprop.data import (DATASETS, DatasetError, Normalize, cache_dir, fashion_mnist, find_dataset,
                           load_dataset, mnist, search_paths, to_float_flat, train_valid_split)

from .conftest import FILES, full_message, idx_bytes, replace_spec, spec_for, tiny_arrays, write_files

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


# --- real MNIST from $HANDPROP_DATA -----------------------------------------------------------

@pytest.fixture(scope="module")
def real_mnist(data_root):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HANDPROP_DATA", str(data_root))
        assert find_dataset("mnist") == (data_root / "mnist").absolute()
        return mnist(download=False)


def test_mnist_shapes_dtypes_and_labels(real_mnist):
    (x_train, y_train), (x_test, y_test) = real_mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert np.issubdtype(y_train.dtype, np.integer)
    assert list(np.bincount(y_train, minlength=10)) == MNIST_TRAIN_COUNTS
    assert list(np.bincount(y_test, minlength=10)) == MNIST_TEST_COUNTS
    assert list(y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert x_train.max() == 255 and x_train.min() == 0


def test_mnist_checksums_match_the_shared_sums(data_root, real_mnist):
    """The registry agrees with SHA256SUMS.uncompressed, and the loaded images hash to it."""
    folder = data_root / "mnist"
    sums = dict(line.split()[::-1] for line in (folder / "SHA256SUMS.uncompressed").read_text().splitlines())
    assert DATASETS["mnist"].files == sums
    (x_train, _), (x_test, _) = real_mnist
    for name, images in (("train-images-idx3-ubyte", x_train), ("t10k-images-idx3-ubyte", x_test)):
        assert hashlib.sha256(idx_bytes(images)).hexdigest() == sums[name]
        assert hashlib.sha256(gzip.decompress((folder / f"{name}.gz").read_bytes())).hexdigest() == sums[name]


def test_mnist_notebook_view_normalised_with_training_stats(real_mnist):
    (x_train, y_train), _ = real_mnist
    (x_tr, y_tr), (x_va, y_va) = train_valid_split(to_float_flat(x_train), y_train, n_valid=10000)
    assert x_tr.shape == (50000, 784) and x_va.shape == (10000, 784) and x_tr.dtype == np.float32
    np.testing.assert_array_equal(y_va, y_train[50000:])
    norm = Normalize().fit(x_tr)
    # The notebooks' mnist.pkl stores pixel/256 (mean 0.1304, std 0.3073); ours are pixel/255.
    assert norm.mean * 255 / 256 == pytest.approx(0.1304, abs=1e-4)
    assert norm.std * 255 / 256 == pytest.approx(0.3073, abs=1e-4)
    full = Normalize().fit(to_float_flat(x_train))
    assert repr(full) == "Normalize(mean=0.1307, std=0.3081)"  # torchvision's MNIST constants
    z_tr, z_va = norm(x_tr), norm(x_va)
    assert abs(z_tr.mean(dtype=np.float64)) < 1e-5
    assert z_tr.std(dtype=np.float64) == pytest.approx(1, abs=1e-5)
    expected = (x_va.astype(np.float64) - x_tr.mean(dtype=np.float64)) / x_tr.std(dtype=np.float64)
    np.testing.assert_allclose(z_va, expected, atol=1e-5)
    assert z_va.mean(dtype=np.float64) != pytest.approx(0, abs=1e-3)  # not re-centred on valid


# --- Fashion-MNIST from Debian's dataset-fashion-mnist -----------------------------------------

@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_package(env):
    assert search_paths("fashion-mnist")[-1] == DEBIAN_FASHION
    assert find_dataset("fashion-mnist") == DEBIAN_FASHION
    (x_train, y_train), (x_test, y_test) = fashion_mnist(download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8
    assert list(np.bincount(y_train)) == [6000] * 10 and list(np.bincount(y_test)) == [1000] * 10
    assert DATASETS["fashion-mnist"].classes[9] == "Ankle boot"
    assert not (env / "cache").exists()  # nothing downloaded or copied


# --- search order --------------------------------------------------------------------------------

def test_search_order_env_then_cache_then_system(tiny, env, monkeypatch):
    arrays, _, spec = tiny
    env_dir, cache, system = env / "data" / "tiny", cache_dir() / "tiny", Path(spec.system_dirs[0])
    monkeypatch.setenv("HANDPROP_DATA", str(env / "data"))
    assert search_paths("tiny") == [env / "data", env_dir, cache, system]
    assert cache == env / "cache" / "handprop" / "tiny"
    assert find_dataset("tiny") is None
    for folder in (system, cache, env_dir):
        write_files(folder, arrays)
        assert find_dataset("tiny") == folder
    shutil.rmtree(env_dir)
    assert find_dataset("tiny") == cache


def test_partial_folder_is_skipped(tiny, env):
    arrays, _, spec = tiny
    write_files(cache_dir() / "tiny", arrays)
    (cache_dir() / "tiny" / f"{FILES[3]}.gz").unlink()
    write_files(Path(spec.system_dirs[0]), arrays)
    assert find_dataset("tiny") == Path(spec.system_dirs[0])


def test_relative_handprop_data_and_home_default_cache(tiny, env, monkeypatch):
    monkeypatch.chdir(env)
    monkeypatch.setenv("HANDPROP_DATA", "rel")
    monkeypatch.setenv("XDG_CACHE_HOME", "not/absolute")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(env / "home"))
    assert search_paths("tiny")[1:3] == [env / "rel" / "tiny", env / "home" / ".cache" / "handprop" / "tiny"]


def test_explicit_root_replaces_the_search(tiny, env, monkeypatch):
    arrays, _, _ = tiny
    write_files(cache_dir() / "tiny", arrays)
    root = env / "mine"
    assert search_paths("tiny", root) == [root, root / "tiny"]
    assert find_dataset("tiny", root) is None
    with pytest.raises(DatasetError, match=str(root)):
        load_dataset("tiny", root=root, download=False)
    write_files(root / "tiny", arrays)  # a parent folder, like $HANDPROP_DATA, also works
    (x, _), _ = load_dataset("tiny", root=root, download=False)
    np.testing.assert_array_equal(x, arrays[0])


# --- loading and verification ---------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False], ids=["gz", "gunzipped"])
def test_load_tiny_copy(tiny, env, gz):
    arrays, _, _ = tiny
    write_files(env / "here", arrays, gz=gz)
    (x_train, y_train), (x_test, y_test) = load_dataset("tiny", root=env / "here", download=False)
    for got, want in zip((x_train, y_train, x_test, y_test), arrays):
        np.testing.assert_array_equal(got, want)


def test_recompressed_copy_is_accepted(tiny, env):
    arrays, _, _ = tiny
    folder = env / "here"
    write_files(folder, arrays)
    for f in FILES:
        path = folder / f"{f}.gz"
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1, mtime=12345))
    load_dataset("tiny", root=folder, download=False)


def test_corrupted_local_copy_is_rejected(tiny, env):
    arrays, _, _ = tiny
    bad = [a.copy() for a in arrays]
    bad[0][0, 0, 0] ^= 1
    write_files(env / "here", bad)
    with pytest.raises(DatasetError, match=f"{env / 'here' / FILES[0]}.gz: SHA-256 mismatch"):
        load_dataset("tiny", root=env / "here", download=False)


def _load_registered(env, monkeypatch, arrays):
    monkeypatch.setitem(DATASETS, "odd", spec_for(arrays, name="odd"))
    write_files(env / "odd", arrays)
    return lambda: load_dataset("odd", root=env / "odd", download=False)


def test_image_label_count_mismatch(env, monkeypatch):
    arrays = tiny_arrays()
    arrays[1] = arrays[1][:-1]
    with pytest.raises(DatasetError, match=f"{FILES[1]}.gz: image/label count mismatch: 11 labels, "
                                           f"but .*{FILES[0]}.gz has 12 images"):
        _load_registered(env, monkeypatch, arrays)()


def test_wrong_dtype_or_rank_is_rejected(env, monkeypatch):
    arrays = tiny_arrays()
    arrays[2] = arrays[2].astype(np.int16)
    with pytest.raises(DatasetError, match=f"{FILES[2]}.gz: expected uint8 data of rank 3"):
        _load_registered(env, monkeypatch, arrays)()
    arrays = tiny_arrays()
    arrays[3] = arrays[3].reshape(-1, 1)
    with pytest.raises(DatasetError, match=f"{FILES[3]}.gz: expected uint8 data of rank 1"):
        _load_registered(env, monkeypatch, arrays)()


def test_label_out_of_range(env, monkeypatch):
    arrays = tiny_arrays()
    arrays[1][3] = 10
    with pytest.raises(DatasetError, match="label 10 out of range for 10 classes"):
        _load_registered(env, monkeypatch, arrays)()


def test_unknown_name_lists_valid_names():
    for call in (lambda: load_dataset("cifar"), lambda: search_paths("cifar"), lambda: find_dataset("cifar")):
        with pytest.raises(DatasetError, match="unknown dataset 'cifar'; valid names: fashion-mnist, mnist"):
            call()


def test_no_data_details_list_every_place_in_order_and_every_remedy(env, monkeypatch):
    spec = replace_spec(monkeypatch, "fashion-mnist", system_dirs=(str(env / "no-debian"),))
    monkeypatch.setenv("HANDPROP_DATA", str(env / "data"))
    (env / "data" / "fashion-mnist").mkdir(parents=True)
    write_files(env / "data" / "fashion-mnist", tiny_arrays()[:1])  # one file of four
    with pytest.raises(DatasetError) as info:
        fashion_mnist(download=False)
    details = info.value.details
    searched = [line for line in details if line.startswith(("* ", "  /"))]
    assert [line[2:].split()[0] for line in searched] == [str(p) for p in search_paths("fashion-mnist")]
    assert f"  {env / 'data'}  (HANDPROP_DATA: none of the 4 IDX files)" in details
    assert f"  {env / 'data' / 'fashion-mnist'}  (HANDPROP_DATA: missing {', '.join(FILES[1:])})" in details
    assert f"  {env / 'no-debian'}  (system copy: no such folder)" in details
    message = full_message(info.value)
    for remedy in ("--data-dir DIR", "HANDPROP_DATA=DIR", "sudo apt install dataset-fashion-mnist",
                   "no --offline", spec.mirrors[0], str(cache_dir() / "fashion-mnist")):
        assert remedy in message
    assert "download=" not in message and "root=" not in message  # the CLI's terms, not Python's


def test_mnist_details_mention_unset_handprop_data(env):
    with pytest.raises(DatasetError) as info:
        mnist(download=False)
    assert "  HANDPROP_DATA is not set" in info.value.details
    assert "apt" not in full_message(info.value)
