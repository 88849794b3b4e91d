"""``handprop predict``: pictures of digits made from MNIST test images (light or dark paper,
off-centre on larger canvases, PNG and JPEG) are classified as MNIST itself is; .npy batches."""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import handprop as hp
from handprop import nn
from handprop.commands import predict as command
from handprop.data.images import CENTRE, mnist_like, read_image, save_png
from handprop.extras import MissingExtraError
from handprop.predict import load_inputs, model_input, predict, read_npy_batch

Image = pytest.importorskip("PIL.Image")

#: The accuracy floor on the pictures of MNIST's first 100 test digits, with the module's small
#: model (96.4% on MNIST's test set, 96.0% on pictures of its first 2,000): measured 100%.
FLOOR = 0.95


def digit_picture(image: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A 28x28 uint8 MNIST image as a photo-like picture: a 64..128 px canvas, the digit scaled
    to 30-70% of it at a random offset, dark ink on light paper half the time, a paper shade."""
    canvas = int(rng.integers(64, 129))
    size = int(canvas * rng.uniform(0.3, 0.7) * 28 / 20)  # the 20 px box of MNIST -> 30-70% of the canvas
    size = min(size, canvas)
    digit = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC), dtype=np.float32) / 255
    ink = np.zeros((canvas, canvas), np.float32)
    top, left = rng.integers(0, canvas - size + 1, size=2)
    ink[top:top + size, left:left + size] = digit
    paper, pen = rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0)
    gray = paper + (pen - paper) * ink
    if rng.random() < 0.5:
        gray = 1 - gray
    return Image.fromarray(np.rint(np.clip(gray, 0, 1) * 255).astype(np.uint8))


def write_pictures(images: np.ndarray, folder: Path, seed: int = 0) -> list[Path]:
    """One picture per image, every third one a JPEG."""
    rng = np.random.default_rng(seed)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"digit{i:04d}.{'jpg' if i % 3 == 2 else 'png'}"
        digit_picture(image, rng).save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def mnist_test(data_root):
    from handprop.data import load_dataset

    _, (x, y) = load_dataset("mnist", root=data_root, download=False)
    return x, y


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, data_root) -> Path:
    """A small model from ``handprop train`` (15,000 images, 3 epochs: about 96.4% on MNIST's test set)."""
    out = tmp_path_factory.mktemp("run")
    env = {**os.environ, "HANDPROP_DATA": str(data_root), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "handprop", "train", "--subset", "15000", "--valid", "0", "--epochs", "3",
                    "--quiet", "--out", str(out)], env=env, check=True, capture_output=True, timeout=300)
    return out / "model.npz"


def _args(*argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


@pytest.mark.slow
def test_pictures_of_mnist_test_digits_are_recognised(model_path, mnist_test, tmp_path, capsys):
    x, y = mnist_test
    paths = write_pictures(x[:100], tmp_path)
    assert command.run(_args(model_path, *paths, "--json")) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in records] == [str(p) for p in paths]
    predicted = np.array([int(r["top"][0]["name"]) for r in records])
    assert np.mean(predicted == y[:100]) >= FLOOR
    for r in records:
        probs = [t["probability"] for t in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


@pytest.mark.slow
def test_an_npy_batch_predicts_as_the_model_does_on_mnist(model_path, mnist_test, tmp_path):
    x, y = mnist_test
    model, normalize, _ = hp.load(model_path, with_meta=True)
    expected = model.eval()(normalize(x[:50].reshape(50, -1) / np.float32(255))).argmax(1)
    for batch in (x[:50], x[:50].reshape(50, -1), x[:50] / np.float32(255), (x[:50] / 255.0).reshape(50, -1)):
        np.save(tmp_path / "batch.npy", batch)
        names, images = load_inputs([tmp_path / "batch.npy"])
        assert names[7] == f"{tmp_path / 'batch.npy'}[7]" and images.shape == (50, 28, 28)
        got = [p.classes[0] for p in predict(model, normalize, images, names)]
        np.testing.assert_array_equal(got, expected)


@pytest.mark.slow
def test_show_writes_what_the_model_saw_and_the_text_output_names_it(model_path, mnist_test, tmp_path, capsys):
    x, _ = mnist_test
    paths = write_pictures(x[:2], tmp_path)
    np.save(tmp_path / "digit0000.npy", x[:2])
    shown = tmp_path / "seen"
    assert command.run(_args(model_path, *paths, tmp_path / "digit0000.npy", "--show", shown)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith(f"{paths[0]}: ") and lines[0].count("%") == 3
    assert sorted(p.name for p in shown.iterdir()) == ["digit0000-0.28x28.png", "digit0000-1.28x28.png",
                                                       "digit0000.28x28.png", "digit0001.28x28.png"]
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "digit0000.png").write_bytes(paths[0].read_bytes())
    command.run(_args(model_path, paths[0], tmp_path / "again" / "digit0000.png", "--show", tmp_path / "again"))
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == [
        "digit0000-1.28x28.png", "digit0000.28x28.png", "digit0000.png"]  # never over another image
    seen = np.asarray(Image.open(shown / "digit0000.28x28.png"))
    assert seen.shape == (28, 28) and seen.dtype == np.uint8
    np.testing.assert_allclose(seen / 255, mnist_like(read_image(paths[0])), atol=0.5 / 255 + 1e-6)


# -- the preprocessing ---------------------------------------------------------------------------------------

def _centre_of_mass(image: np.ndarray) -> np.ndarray:
    centres = np.arange(28) + 0.5
    return np.array([image.sum(axis=1) @ centres, image.sum(axis=0) @ centres]) / image.sum()


@pytest.mark.parametrize("invert", [False, True])
def test_a_digit_anywhere_on_any_paper_comes_out_as_mnist_draws_it(invert):
    canvas = np.random.default_rng(0).uniform(0.1, 0.2, (90, 140)).astype(np.float32)  # paper with a grain
    canvas[10:70, 100:115] = 0.9  # a tall bar ("1"), 60 x 15 px, off-centre, grey ink
    out = mnist_like(1 - canvas if invert else canvas)
    assert out.shape == (28, 28) and out.dtype == np.float32 and out.max() == 1 and out.min() == 0
    np.testing.assert_allclose(_centre_of_mass(out), [CENTRE, CENTRE], atol=0.05)
    rows, cols = np.flatnonzero(out.max(axis=1) > 0.5), np.flatnonzero(out.max(axis=0) > 0.5)
    assert len(rows) == 20 and len(cols) == 5  # the long side fills the 20 px box, the aspect is kept
    assert out[0].max() == 0 and out[:, :9].max() == 0


def test_mnist_digits_come_through_almost_unchanged(mnist_test):
    x, _ = mnist_test
    images = x[:200] / np.float32(255)
    out = np.stack([mnist_like(image) for image in images])
    assert np.mean(np.abs(out - images)) < 0.04  # a sub-pixel shift and a little anti-aliasing
    np.testing.assert_allclose(np.mean([_centre_of_mass(o) for o in out], axis=0), [CENTRE, CENTRE], atol=0.01)


def test_blank_and_malformed_images_are_refused():
    with pytest.raises(ValueError, match=r"^x\.png: no digit found \(the image is blank"):
        mnist_like(np.full((40, 40), 0.7, np.float32), "x.png")
    with pytest.raises(ValueError, match=r"expected a 2-d grayscale image, got shape \(4, 4, 3\)"):
        mnist_like(np.zeros((4, 4, 3)))


@pytest.mark.parametrize("mode,make,paper", [
    ("RGBA", lambda ink: np.dstack([np.zeros_like(ink)] * 3 + [ink]), 1),  # black pen on a transparent canvas
    ("I;16", lambda ink: (255 - ink).astype(np.uint16) * 160, 160 * 255 / 65535),  # "L" would clip it to 1
    ("RGB", lambda ink: np.dstack([255 - ink, 255 - ink // 2, 255 - ink]), 1),
])
def test_pictures_are_read_as_grayscale_ink_on_paper(tmp_path, mode, make, paper):
    ink = np.zeros((30, 20), np.uint8)
    ink[5:25, 8:12] = 255
    Image.fromarray(make(ink)).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode == mode
    gray = read_image(tmp_path / "d.png")
    assert gray.shape == (30, 20) and gray.dtype == np.float32
    assert gray[0, 0] == pytest.approx(paper, abs=1e-6) and gray[10, 10] < 0.5  # light paper, dark ink


def test_pictures_are_turned_upright_as_their_exif_says(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; rotate 90 degrees clockwise to view
    Image.fromarray(np.zeros((30, 20), np.uint8)).save(tmp_path / "d.jpg", exif=exif)
    assert read_image(tmp_path / "d.jpg").shape == (20, 30)


def test_unreadable_files_name_the_file(tmp_path):
    (tmp_path / "d.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"d\.png: not a readable image"):
        read_image(tmp_path / "d.png")
    with pytest.raises(ValueError, match=r"missing\.png: not a readable image"):
        read_image(tmp_path / "missing.png")


@pytest.mark.parametrize("array,message", [
    (np.zeros((3, 28, 28), np.int64), r"expected uint8 pixels \(0\.\.255\) or float pixels \(0\.\.1\), got int64"),
    (np.full((3, 784), 255.0), r"float pixels must lie in \[0, 1\], found values in \[255, 255\] \(0\.\.255 pixels"),
    (np.full((3, 784), np.nan, np.float32), r"found no finite values and NaN or infinity"),
    (np.array([[0.5] * 783 + [np.inf]]), r"found values in \[0\.5, 0\.5\] and NaN or infinity"),
    (np.zeros((28, 28), np.uint8), r"expected a batch of 28x28 images.*got \(28, 28\) \(one image: x\[None\]\)"),
    (np.zeros((3, 32, 32), np.uint8), r"got \(3, 32, 32\)"),
    (np.zeros((0, 784), np.uint8), r"N >= 1, got \(0, 784\)"),
    (np.array([{"a": 1}], dtype=object), r"not a readable \.npy array"),
])
def test_ambiguous_or_malformed_npy_batches_are_refused(tmp_path, array, message):
    np.save(tmp_path / "b.npy", array, allow_pickle=True)
    with pytest.raises(ValueError, match=message):
        read_npy_batch(tmp_path / "b.npy")


def test_images_take_the_shape_of_the_models_first_layer():
    images = np.random.default_rng(0).random((2, 28, 28), dtype=np.float32)
    assert model_input(nn.Sequential(nn.Linear(784, 3)), images).shape == (2, 784)
    assert model_input(nn.Sequential(nn.BatchNorm2d(1)), images).shape == (2, 1, 28, 28)
    assert model_input(nn.Sequential(nn.ReLU(), nn.Linear(784, 3)), images).shape == (2, 784)
    with pytest.raises(ValueError, match=r"takes samples of shape \(3, 'height', 'width'\); .* 28x28 grayscale"):
        model_input(nn.Sequential(nn.BatchNorm2d(3)), images)


def test_without_pillow_the_error_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(MissingExtraError, match=r"^handprop predict \(reading images\) needs the Pillow package: "
                                                r"pip install 'handprop\[cli\]'$"):
        read_image(tmp_path / "d.png")
    with pytest.raises(MissingExtraError, match=r"needs the Pillow package"):
        save_png(np.zeros((28, 28)), tmp_path / "d.png")


def test_png_round_trip_is_atomic_and_exact_to_a_grey_level(tmp_path):
    image = np.linspace(0, 1, 784, dtype=np.float32).reshape(28, 28)
    save_png(image, tmp_path / "x.png")
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    np.testing.assert_allclose(np.asarray(Image.open(tmp_path / "x.png")) / 255, image, atol=0.5 / 255 + 1e-6)
    assert io.BytesIO((tmp_path / "x.png").read_bytes()).read(8) == b"\x89PNG\r\n\x1a\n"
