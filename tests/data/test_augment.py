"""Batch augmentation: what each transform may and may not do to an image, determinism, ranges, errors."""
from __future__ import annotations

import numpy as np
import pytest

from handprop.data.augment import Augment, shift, tta_views

SHAPE = (1, 28, 28)


def _batch(n=64, seed=0, flat=False):
    """Images with distinct pixels (no symmetric image), float32, in [-0.5, 2.5]."""
    x = np.random.default_rng(seed).uniform(-0.5, 2.5, (n, *SHAPE)).astype(np.float32)
    return x.reshape(n, -1) if flat else x


def _all_shifts(x, pad, fill):
    """(shifts, N, C, H, W): ``x`` moved by every (dy, dx) with |d| <= pad."""
    moves = [(dy, dx) for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)]
    return np.stack([shift(x, np.full(len(x), dy), np.full(len(x), dx), pad, fill) for dy, dx in moves])


@pytest.mark.parametrize("flat", [False, True])
def test_shapes_and_dtype_are_kept(flat):
    x = _batch(flat=flat)
    out = Augment(SHAPE, rng=0, flip=True)(x)
    assert out.shape == x.shape and out.dtype == np.float32 and not np.shares_memory(out, x)


def test_shift_moves_the_image_and_fills_what_it_uncovers():
    x = _batch(4)
    out = shift(x, np.array([1, 0, -2, 0]), np.array([0, 1, 0, 0]), 2, fill=-7.0)
    np.testing.assert_array_equal(out[0, :, 1:], x[0, :, :-1])
    assert (out[0, :, 0] == -7).all()
    np.testing.assert_array_equal(out[1, :, :, 1:], x[1, :, :, :-1])
    np.testing.assert_array_equal(out[2, :, :-2], x[2, :, 2:])
    np.testing.assert_array_equal(out[3], x[3])


def test_crop_is_a_shift_of_at_most_pad_pixels_and_varies():
    x = _batch()
    out = Augment(SHAPE, rng=1, pad=2, erase=0)(x)
    matches = (_all_shifts(x, 2, 0.0) == out).all(axis=(2, 3, 4))  # (shifts, N)
    assert matches.any(axis=0).all()  # every image is one of the 25 shifts of itself
    assert len(set(matches.argmax(axis=0))) > 10  # drawn per image, not one shift for the batch


def test_digits_are_never_flipped():
    x = _batch(256)
    assert (Augment(SHAPE, rng=2, pad=0, erase=0, flip=False)(x) == x).all()


def test_clothes_are_flipped_about_half_the_time():
    x = _batch(256)
    out = Augment(SHAPE, rng=3, pad=0, erase=0, flip=True)(x)
    same, mirrored = (out == x).all(axis=(1, 2, 3)), (out == x[..., ::-1]).all(axis=(1, 2, 3))
    assert (same | mirrored).all() and 80 < mirrored.sum() < 176


def test_erasing_replaces_one_rectangle_of_at_most_half_the_sides():
    x = _batch(200)
    out = Augment(SHAPE, rng=4, pad=0, erase=0.5)(x)
    changed = (out != x)[:, 0]
    erased = changed.any(axis=(1, 2))
    assert 60 < erased.sum() < 140
    rows, cols = changed.any(axis=2), changed.any(axis=1)
    for r in (rows[erased], cols[erased]):
        first, last = r.argmax(axis=1), r.shape[1] - 1 - r[:, ::-1].argmax(axis=1)
        assert (last - first + 1 <= 14).all()
    # the changed pixels fill their bounding box: one rectangle (noise equal to the pixel is negligible)
    area = changed.sum(axis=(1, 2))[erased]
    height = rows[erased].sum(axis=1)
    width = cols[erased].sum(axis=1)
    assert (area == height * width).all()


def test_values_stay_in_the_batch_range_or_the_fill():
    x = _batch()
    out = Augment(SHAPE, rng=5, pad=2, erase=1.0, flip=True, fill=-0.4242)(x)
    assert out.min() >= min(x.min(), -0.4242) and out.max() <= x.max()


def test_the_same_seed_gives_the_same_batches():
    x = _batch()
    a, b, c = Augment(SHAPE, rng=6, flip=True), Augment(SHAPE, rng=6, flip=True), Augment(SHAPE, rng=7, flip=True)
    first = a(x)
    np.testing.assert_array_equal(first, b(x))
    np.testing.assert_array_equal(a(x), b(x))  # and the next batch too
    assert not np.array_equal(first, c(x))


def test_tta_views():
    x = _batch(8, flat=True)
    flips, shifts = tta_views(SHAPE, flip=True), tta_views(SHAPE, flip=False, fill=-1.0)
    assert len(flips) == 2 and len(shifts) == 5
    np.testing.assert_array_equal(flips[0](x), x)
    np.testing.assert_array_equal(flips[1](x).reshape(8, *SHAPE), x.reshape(8, *SHAPE)[..., ::-1])
    moved = [v(x).reshape(8, *SHAPE) for v in shifts[1:]]
    assert all(m.shape == (8, *SHAPE) for m in moved)
    assert sorted(int((m == -1.0).all(axis=(0, 1)).sum(axis=None)) for m in moved) == [28] * 4  # one blank line each
    np.testing.assert_array_equal(moved[0][:, :, 1:], x.reshape(8, *SHAPE)[:, :, :-1])


@pytest.mark.parametrize("kwargs, match", [({"pad": -1}, "pad must be a non-negative integer"),
                                           ({"erase": 1.5}, r"erase must be a probability in \[0, 1\]")])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Augment(SHAPE, **kwargs)


def test_images_of_another_shape_are_refused():
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 28, 28\) or flattened, got \(2, 3, 28, 28\)"):
        Augment(SHAPE)(np.zeros((2, 3, 28, 28), np.float32))
