"""Toy dense data: rendering primitives, determinism, speed, and that all three readers accept it."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from benchmark.errors import UserError
from benchmark.data.davis import load_davis
from benchmark.data.jhmdb import load_jhmdb
from benchmark.data.toy.dense import SIZES, figure_poses, generate_dense, render_figure
from benchmark.data.toy.render import (
    PHOTO_NAMES, Sprite, blob_mask, capsule_sprite, paste, pick_photos, smooth_path, texture,
)
from benchmark.data.vip import load_vip


def _flat_sprite(h: int, w: int, colour: tuple[float, float, float]) -> Sprite:
    return Sprite(np.broadcast_to(np.asarray(colour, np.float32), (h, w, 3)).copy(), blob_mask(np.random.default_rng(1), h, w))


def test_paste_labels_exactly_the_pixels_it_paints():
    canvas, ids = np.zeros((40, 50, 3), np.float32), np.zeros((40, 50), np.uint8)
    paste(canvas, ids, _flat_sprite(16, 12, (1, 0, 0)), (20, 20), label=1, scale=1.3, angle=0.4)
    paste(canvas, ids, _flat_sprite(10, 10, (0, 1, 0)), (22, 26), label=2)  # in front, overlapping
    np.testing.assert_array_equal(ids == 1, canvas[..., 0] == 1)
    np.testing.assert_array_equal(ids == 2, canvas[..., 1] == 1)
    assert (ids == 1).sum() > 100 and (ids == 2).sum() > 40


def test_paste_scale_rotation_and_clipping():
    sprite = Sprite(np.ones((4, 20, 3), np.float32), np.ones((4, 20), bool))
    ids = np.zeros((30, 30), np.uint8)
    paste(np.zeros((30, 30, 3), np.float32), ids, sprite, (15, 15), angle=np.pi / 2)
    ys, xs = np.nonzero(ids)
    assert np.ptp(ys) + 1 == 20 and np.ptp(xs) + 1 == 4  # a quarter turn makes it upright
    ids[:] = 0
    paste(np.zeros((30, 30, 3), np.float32), ids, sprite, (15, 15), scale=0.5)
    assert ids.sum() == 2 * 10
    ids[:] = 0
    paste(np.zeros((30, 30, 3), np.float32), ids, sprite, (0, 0))  # three quarters off the canvas
    assert ids.sum() == 2 * 10
    paste(np.zeros((30, 30, 3), np.float32), ids, sprite, (-50, -50))  # entirely off: nothing
    assert ids.sum() == 2 * 10


def test_capsule_and_textures():
    rng = np.random.default_rng(0)
    cap = capsule_sprite(rng, length=20, radius=4)
    assert cap.mask.shape == (8, 28) and cap.mask[4, 14] and not cap.mask[0, 0]
    tex = texture(rng, 24, 40, photo=0)
    assert tex.shape == (24, 40, 3) and tex.dtype == np.float32 and 0 <= tex.min() and tex.max() <= 1
    assert tex.std() > 0.02  # a natural texture, not a flat colour
    assert sorted(pick_photos(rng, len(PHOTO_NAMES))) == list(range(len(PHOTO_NAMES)))


def test_smooth_path_range_pins_and_smoothness():
    path = smooth_path(np.random.default_rng(0), 50, 10.0, 20.0, knots=4, start=12.0, end=19.0)
    assert path.shape == (50,) and path[0] == 12.0 and path[-1] == 19.0
    assert path.min() >= 10.0 and path.max() <= 20.0
    assert np.abs(np.diff(path)).max() < 1.0  # no jumps: at most 10 units over ~16 steps between knots


def test_figure_is_deterministic_and_seed_dependent():
    a = render_figure(np.random.default_rng(3), 4, (64, 80))
    b = render_figure(np.random.default_rng(3), 4, (64, 80))
    c = render_figure(np.random.default_rng(4), 4, (64, 80))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[2], c[2])
    frames, parts, joints = a
    assert frames.shape == (4, 64, 80, 3) and parts.shape == (4, 64, 80) and joints.shape == (4, 15, 2)
    # the wrists sit on the painted arms (part 14 = right arm, 15 = left arm)
    for t in range(4):
        for j, label in ((11, 14), (12, 15)):
            x, y = np.rint(joints[t, j]).astype(int)
            if 0 <= x < 80 and 0 <= y < 64:
                assert label in parts[t, max(0, y - 1):y + 2, max(0, x - 1):x + 2]


def test_limb_lengths_are_rigid():
    points, height = figure_poses(np.random.default_rng(0), 10, (120, 160))
    upper_arm = np.linalg.norm(points["right elbow"] - points["right shoulder"], axis=-1) / height
    np.testing.assert_allclose(upper_arm, upper_arm[0], rtol=1e-5)


def test_unknown_size():
    with pytest.raises(UserError, match="'huge'"):
        generate_dense(Path("unused"), np.random.default_rng(0), "huge")


def test_small_generates_quickly_deterministically_and_reads_back(tmp_path):
    start = time.perf_counter()
    generate_dense(tmp_path / "a", np.random.default_rng(7), "small")
    elapsed = time.perf_counter() - start
    assert elapsed < 30, f"small dense toy data took {elapsed:.1f}s"
    spec = SIZES["small"]
    assert len(load_davis(tmp_path / "a" / "DAVIS")) == spec.davis_sequences
    assert len(load_vip(tmp_path / "a" / "VIP")) == spec.vip_videos
    assert len(load_jhmdb(tmp_path / "a" / "JHMDB")) == 2 * spec.jhmdb_test_per_class
    generate_dense(tmp_path / "b", np.random.default_rng(7), "small", datasets=("davis",))
    for f in sorted((tmp_path / "b" / "DAVIS").rglob("*.*")):
        assert f.read_bytes() == (tmp_path / "a" / f.relative_to(tmp_path / "b")).read_bytes(), f
