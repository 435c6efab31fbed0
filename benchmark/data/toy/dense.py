"""Toy data for the dense label-propagation tasks, written in the real DAVIS, VIP and JHMDB layouts.

What makes it a meaningful test of an encoder rather than of colour matching:

* every object, body part and background is a crop of a *different* natural photo (render.py), so
  telling them apart takes texture features, which ImageNet training provides and random weights don't;
* objects travel about their own width or more over a clip, change scale, rotate and occlude each other,
  so "copy the first frame's labels" (what uninformative features collapse to) scores poorly;
* the ground truth is exact: masks, part maps and keypoints come from the same geometry that painted
  the pixels.

The articulated figure (15 JHMDB joints, limbs as textured capsules) is shared by VIP, which labels its
limbs with VIP part classes, and JHMDB, which records its joints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from benchmark.errors import UserError
from benchmark.data.davis import write_mask
from benchmark.data.jhmdb import JHMDB_JOINTS
from benchmark.data.toy.render import (
    blob_sprite, capsule_sprite, pan, paste, pick_photos, smooth_path, texture, to_uint8,
)


@dataclass(frozen=True)
class DenseSize:
    """Counts and resolutions of one toy size. Sizes are (H, W)."""

    davis_sequences: int
    davis_frames: int
    davis_hw: tuple[int, int]
    vip_videos: int
    vip_frames: int
    vip_every: int  # VIP annotates every n-th frame (the real data: one in 25)
    vip_hw: tuple[int, int]
    jhmdb_test_per_class: int
    jhmdb_frames: int
    jhmdb_hw: tuple[int, int]


SIZES: dict[str, DenseSize] = {
    # small: 12 DAVIS sequences, 12 VIP and 12 JHMDB test videos, so a paired test can reach p < 0.05 after
    # Holm over a table of a dozen Δ (the exact sign-flip p of n samples is at least 2^(1-n): 2 or 3 could
    # never be significant)
    "small": DenseSize(12, 12, (128, 224), 12, 13, 3, (192, 192), 6, 12, (240, 320)),
    "medium": DenseSize(24, 24, (256, 448), 24, 25, 4, (320, 320), 12, 24, (240, 320)),
}
JHMDB_ACTIONS = ("wave", "walk")  # real JHMDB class names; one train clip per class is listed too
_JPEG_QUALITY = 95


def _save_jpg(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(img)).save(path, quality=_JPEG_QUALITY)


# ----------------------------------------------------------------------------------------- DAVIS
def _davis_sequence(root: Path, name: str, n_obj: int, T: int, hw: tuple[int, int], rng: np.random.Generator) -> None:
    """Textured blobs on a panning textured background; ids 1..n_obj, later ids in front."""
    H, W = hw
    photos = pick_photos(rng, n_obj + 1)
    extent = W // 3
    bg = texture(rng, H, W + extent, photo=photos[0], zoom=(1.5, 3.0))
    bg_x = smooth_path(rng, T, 0, extent, knots=2)
    objects = []
    for k in range(n_obj):
        h = float(rng.uniform(0.35, 0.5)) * H
        w = h * float(rng.uniform(0.8, 1.3))
        x0 = W * (k + 0.5) / n_obj  # spread apart in the first frame: every object visible there
        # travel at least about one object width, towards the side with more room
        x1 = float(np.clip(x0 + (1 if x0 < W / 2 else -1) * rng.uniform(0.3, 0.5) * W, 0.12 * W, 0.88 * W))
        objects.append((
            blob_sprite(rng, round(h), round(w), photo=photos[k + 1]),
            smooth_path(rng, T, 0.3 * H, 0.7 * H, knots=3, start=float(rng.uniform(0.4, 0.6)) * H),
            smooth_path(rng, T, 0.12 * W, 0.88 * W, knots=3, start=x0, end=x1),
            smooth_path(rng, T, 0.75, 1.3, knots=3, start=1.0),
            smooth_path(rng, T, -0.35, 0.35, knots=3, start=0.0),
        ))
    for t in range(T):
        frame, ids = pan(bg, H, W, 0, bg_x[t]), np.zeros((H, W), np.uint8)
        for k, (sprite, ys, xs, scale, angle) in enumerate(objects):
            paste(frame, ids, sprite, (ys[t], xs[t]), label=k + 1, scale=float(scale[t]), angle=float(angle[t]))
        # the folder is named for the release's resolution, as readers expect it, whatever the toy size
        _save_jpg(root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", frame)
        write_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", ids)


def _generate_davis(root: Path, rng: np.random.Generator, size: DenseSize) -> None:
    names = [f"toy-{i:02d}" for i in range(size.davis_sequences)]
    for i, name in enumerate(names):
        _davis_sequence(root, name, n_obj=(1, 2, 3)[(i + 1) % 3], T=size.davis_frames, hw=size.davis_hw, rng=rng)
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{n}\n" for n in names))


# ------------------------------------------------------------------------------ articulated figure
# Bone lengths as fractions of the figure height (head top to ankles ≈ 0.97).
_TORSO, _HEAD, _SHOULDER, _HIP = 0.32, 0.12, 0.11, 0.07
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.17, 0.16, 0.23, 0.22
# Limbs back to front: (from point, to point, radius as a fraction of figure height, VIP class, texture group).
_LIMBS: tuple[tuple[str, str, float, int, str], ...] = (
    ("left shoulder", "left elbow", 0.05, 15, "left arm"),
    ("left elbow", "left wrist", 0.045, 15, "left arm"),
    ("left hip", "left knee", 0.06, 8, "pants"),
    ("left knee", "left ankle", 0.05, 17, "left leg"),
    ("neck", "pelvis", 0.12, 4, "clothes"),
    ("right hip", "right knee", 0.06, 8, "pants"),
    ("right knee", "right ankle", 0.05, 16, "right leg"),
    ("face", "face", 0.09, 13, "face"),
    ("hair right", "hair left", 0.045, 2, "hair"),
    ("right shoulder", "right elbow", 0.05, 14, "right arm"),
    ("right elbow", "right wrist", 0.045, 14, "right arm"),
)
_GROUPS = tuple(dict.fromkeys(g for *_, g in _LIMBS))


def _dir(theta: np.ndarray) -> np.ndarray:
    """Unit vectors (x, y-down) at angle ``theta`` from straight down, positive towards +x."""
    return np.stack([np.sin(theta), np.cos(theta)], axis=-1)


def figure_poses(rng: np.random.Generator, T: int, hw: tuple[int, int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Points of a moving figure, ``name -> float (T, 2)`` (x, y), and its height per frame ``(T,)``.

    The neck walks across the frame, the torso leans, arms and legs swing within human-like ranges;
    every angle is a smooth path, so joints move a few pixels per frame.
    """
    H, W = hw
    height = 0.8 * H * smooth_path(rng, T, 0.85, 1.0, knots=3)
    neck = np.stack([smooth_path(rng, T, 0.3 * W, 0.7 * W, knots=3), smooth_path(rng, T, 0.2 * H, 0.3 * H, knots=3)], -1)
    lean = smooth_path(rng, T, -0.25, 0.25, knots=3)
    down, side = _dir(lean), np.stack([np.cos(lean), -np.sin(lean)], -1)  # side: towards the figure's left (+x)
    s = height[:, None]
    p = {"neck": neck, "pelvis": neck + _TORSO * s * down}
    p["belly"] = neck + 0.7 * _TORSO * s * down
    p["face"] = neck - _HEAD * s * down
    p["hair right"] = p["face"] - 0.06 * s * down - 0.04 * s * side
    p["hair left"] = p["face"] - 0.06 * s * down + 0.04 * s * side
    for sign, lr in ((-1, "right"), (1, "left")):  # the figure faces the camera: its right is on screen-left
        shoulder = neck + sign * _SHOULDER * s * side
        hip = p["pelvis"] + sign * _HIP * s * side
        a_arm = lean + sign * smooth_path(rng, T, 0.15, 1.7, knots=4)
        a_elbow = a_arm + sign * smooth_path(rng, T, -0.3, 1.3, knots=4)
        a_leg = lean + sign * smooth_path(rng, T, -0.15, 0.5, knots=4)
        a_knee = a_leg + sign * smooth_path(rng, T, -0.5, 0.15, knots=4)
        p[f"{lr} shoulder"], p[f"{lr} hip"] = shoulder, hip
        p[f"{lr} elbow"] = shoulder + _UPPER_ARM * s * _dir(a_arm)
        p[f"{lr} wrist"] = p[f"{lr} elbow"] + _FOREARM * s * _dir(a_elbow)
        p[f"{lr} knee"] = hip + _THIGH * s * _dir(a_leg)
        p[f"{lr} ankle"] = p[f"{lr} knee"] + _SHIN * s * _dir(a_knee)
    return p, height


def render_figure(rng: np.random.Generator, T: int, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured figure moving over a panning background.

    Returns:
        frames float32 (T, H, W, 3) in [0, 1], VIP part classes uint8 (T, H, W), and the 15 JHMDB
        joints float32 (T, 15, 2) as 0-based (x, y) pixels.
    """
    H, W = hw
    photos = pick_photos(rng, len(_GROUPS) + 1)
    group_photo = dict(zip(_GROUPS, photos[1:]))
    extent = W // 4
    bg = texture(rng, H, W + extent, photo=photos[0], zoom=(1.5, 3.0))
    bg_x = smooth_path(rng, T, 0, extent, knots=2)
    points, height = figure_poses(rng, T, hw)
    h0 = 0.8 * H  # sprites are cut at this figure height and scaled per frame
    sprites = []
    for a, b, radius, _, group in _LIMBS:
        length = 0.0 if a == b else float(np.linalg.norm(points[b][0] - points[a][0]) / height[0] * h0)
        sprites.append(capsule_sprite(rng, length, radius * h0, photo=group_photo[group]))
    frames = np.empty((T, H, W, 3), np.float32)
    parts = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        frames[t] = pan(bg, H, W, 0, bg_x[t])
        for (a, b, _, label, _), sprite in zip(_LIMBS, sprites):
            pa, pb = points[a][t], points[b][t]
            v = pb - pa
            paste(frames[t], parts[t], sprite, ((pa[1] + pb[1]) / 2, (pa[0] + pb[0]) / 2), label=label,
                  scale=float(height[t] / h0), angle=math.atan2(-v[1], v[0]))
    return frames, parts, np.stack([points[j] for j in JHMDB_JOINTS], axis=1).astype(np.float32)


# ------------------------------------------------------------------------------------------- VIP
def _generate_vip(root: Path, rng: np.random.Generator, size: DenseSize) -> None:
    names = [f"toy_video_{i:02d}" for i in range(size.vip_videos)]
    for name in names:
        frames, parts, _ = render_figure(rng, size.vip_frames, size.vip_hw)
        for t, frame in enumerate(frames):
            _save_jpg(root / "Images" / name / f"{t:06d}.jpg", frame)
            if t % size.vip_every == 0:
                out = root / "Annotations" / "Category_ids" / name / f"{t:06d}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(parts[t]).save(out)  # grey ('L') PNG of class ids, as Category_ids are
    (root / "lists").mkdir(parents=True, exist_ok=True)
    (root / "lists" / "val_videos.txt").write_text("".join(f"{n}\n" for n in names))


# ----------------------------------------------------------------------------------------- JHMDB
def _jhmdb_clip(root: Path, action: str, name: str, T: int, hw: tuple[int, int], rng: np.random.Generator) -> None:
    frames, _, joints = render_figure(rng, T, hw)
    for t, frame in enumerate(frames):
        out = root / "Rename_Images" / action / name / f"{t + 1:05d}.png"  # JHMDB numbers frames from 1
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(to_uint8(frame)).save(out, compress_level=1)  # fast; frames are textures
    mat = root / "joint_positions" / action / name / "joint_positions.mat"
    mat.parent.mkdir(parents=True, exist_ok=True)
    scale = np.linalg.norm(joints.max(axis=1) - joints.min(axis=1), axis=-1)[None, :].astype(np.float64)
    # pos_img is 2 × 15 × T in MATLAB's 1-based pixels, as the release stores it
    scipy.io.savemat(str(mat), {"pos_img": joints.transpose(2, 1, 0).astype(np.float64) + 1.0,
                                "scale": scale, "viewpoint": "S"})


def _generate_jhmdb(root: Path, rng: np.random.Generator, size: DenseSize) -> None:
    (root / "splits").mkdir(parents=True, exist_ok=True)
    for action in JHMDB_ACTIONS:
        listed = [(f"toy_{action}_train_0", 1)] + [(f"toy_{action}_{i}", 2) for i in range(size.jhmdb_test_per_class)]
        for name, _ in listed:
            _jhmdb_clip(root, action, name, size.jhmdb_frames, size.jhmdb_hw, rng)
        (root / "splits" / f"{action}_test_split1.txt").write_text("".join(f"{n}.avi {f}\n" for n, f in listed))


def generate_dense(root: Path, rng: np.random.Generator, size: str | DenseSize,
                   datasets: tuple[str, ...] = ("davis", "vip", "jhmdb")) -> None:
    """Write toy DAVIS, VIP and JHMDB under ``root/DAVIS``, ``root/VIP``, ``root/JHMDB``.

    Deterministic given the state of ``rng``. ``size`` is a key of :data:`SIZES`, or a
    :class:`DenseSize` of its own (a test that needs more sequences for statistical power);
    ``datasets`` picks a subset (in this order).
    """
    if isinstance(size, str) and size not in SIZES:
        raise UserError(f"unknown toy size {size!r}: choose one of {', '.join(SIZES)}")
    spec, root = (SIZES[size] if isinstance(size, str) else size), Path(root)
    writers = {"davis": (_generate_davis, "DAVIS"), "vip": (_generate_vip, "VIP"), "jhmdb": (_generate_jhmdb, "JHMDB")}
    for name in datasets:
        write, folder = writers[name]
        write(root / folder, rng, spec)
