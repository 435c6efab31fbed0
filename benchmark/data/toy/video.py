"""Toy video-level data sets in their real on-disk layouts: UCF101, HMDB51, SSv2, Kinetics, THUMOS, clips.

Every frame is rendered with :mod:`benchmark.data.toy.render` (natural-photo textures on sprites and
backgrounds) and encoded as its data set ships: MPEG-4 ``.avi`` for UCF101/HMDB51, VP9 ``.webm`` for
SSv2, H.264 ``.mp4`` for the rest. What each set is built to measure:

* **UCF101 / HMDB51**: classes defined by *how* an object moves (slides, bounces, orbits, pulses,
  spins; swings, zigzags, hops, shakes, drifts). As in the real sets, where the scene and the objects
  correlate with the action, a class's own object photo is used in ``context_prob`` of its videos,
  a random one otherwise; backgrounds are always random. Frames are small (``rec_hw``) so that a
  third of ``groups`` per class gives 60 test clips on ``small``: one clip is 1.7 points, not 10.
* **SSv2**: per motion axis, three classes that differ *only in temporal order*: "Moving something
  from left to right", "... from right to left" and "Shaking something left and right" (likewise
  down / up / up and down). Each video renders ``ssv2_frames`` positions along the axis; the classes
  play them in order, reversed, or interleaved (0, 4, 1, 5, … or its reversal): all three hold
  exactly the same multiset of frames, so anything order-blind (mean pooling) is at chance within an
  axis. The direction pair needs the arrow of time; shaking is fast back-and-forth motion, which a
  motion-speed model (AdViSe's rate pretext) can see without it. As in
  the real set, the camera is hand-held: it pans steadily, and the class's order applies to it too. Frames
  are small (``ssv2_hw``) and clips short so that enough test clips (``ssv2_val`` per class) give a
  paired CI narrow enough to separate methods (a 0.15 gain on 240 clips).
* **Kinetics / clips**: unlabelled scenes — a panning textured background with 2–3 textured objects
  on smooth paths, changing scale and occluding each other — for the methods that train and for the
  trade-off diagnostics.
* **THUMOS**: long clips of an idle object that, inside annotated segments, hops, twirls or swells
  (visible in single frames as well as in motion), with ActivityNet-style JSON annotations; 12 test
  videos on ``small``, each one sample of the paired statistics.
"""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.errors import UserError
from benchmark.data.toy.render import (
    PHOTO_NAMES,
    Sprite,
    blob_mask,
    pan,
    paste,
    pick_photos,
    smooth_path,
    texture,
    to_uint8,
)
from benchmark.data.video import write_video


@dataclass(frozen=True)
class VideoSpec:
    """Counts and sizes of one toy size (``small`` keeps the whole test suite fast)."""

    hw: int = 96                  # frame height = width (even, for yuv420p): kinetics, clips, THUMOS
    rec_hw: int = 64              # UCF101/HMDB51 frame side: small frames, many clips (statistical power)
    frames: int = 16              # frames per recognition video
    groups: int = 36              # UCF101 groups per class (1 clip each, a third tested: 60 test clips);
                                  # HMDB51 videos per class - 1 (12 tested per class and split)
    ssv2_train: int = 24          # SSv2 train videos per class
    ssv2_val: int = 40            # SSv2 validation (test) videos per class: 6 classes → 240 clips
    ssv2_hw: int = 64             # SSv2 frame side: small frames, many clips (statistical power)
    ssv2_frames: int = 8          # SSv2 frames per video (one 8-frame clip, stride 1)
    kinetics: int = 8             # unlabelled training videos
    kinetics_frames: int = 48
    thumos: tuple[int, int] = (24, 12)  # validation (the probe learns textures apart from poses: 6 were too few), test
    thumos_frames: int = 120      # at 10 fps
    clips: int = 3
    context_prob: float = 0.6     # UCF/HMDB: share of a class's videos showing the class's own object


SIZES = {
    "small": VideoSpec(),
    "medium": VideoSpec(hw=112, rec_hw=96, frames=24, groups=48, ssv2_train=48, ssv2_val=80, kinetics=32,
                        kinetics_frames=96, thumos=(48, 24), thumos_frames=300, clips=8),
}

Track = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # y, x, scale, angle per frame
Motion = Callable[[np.random.Generator, int, int], Track]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _track(T: int, y, x, scale=1.0, angle=0.0) -> Track:
    """Per-frame arrays from scalars or arrays of length ``T``."""
    return tuple(np.broadcast_to(np.asarray(v, np.float32), (T,)).copy() for v in (y, x, scale, angle))


# --- motion patterns: (rng, T, frame side) -> per-frame (y, x, scale, angle) of the object ---

def _sliding(rng, T, s):
    x = np.linspace(0.2 * s, 0.8 * s, T)
    return _track(T, smooth_path(rng, T, 0.4 * s, 0.6 * s), x if rng.random() < 0.5 else x[::-1])


def _bouncing(rng, T, s):
    t = np.arange(T) / T
    return _track(T, 0.75 * s - 0.45 * s * np.abs(np.sin(math.pi * _u(rng, 1.5, 2.5) * t + _u(rng, 0, 1))),
                  _u(rng, 0.35, 0.65) * s)


def _orbiting(rng, T, s):
    ph = _u(rng, 0, 2 * math.pi) + np.sign(rng.uniform(-1, 1)) * 2 * math.pi * np.arange(T) / T * _u(rng, 0.8, 1.2)
    return _track(T, s / 2 + 0.25 * s * np.sin(ph), s / 2 + 0.25 * s * np.cos(ph))


def _pulsing(rng, T, s):
    t = np.arange(T) / T
    return _track(T, _u(rng, 0.4, 0.6) * s, _u(rng, 0.4, 0.6) * s,
                  1.0 + 0.45 * np.sin(2 * math.pi * _u(rng, 1.5, 2.5) * t + _u(rng, 0, 6.3)))


def _spinning(rng, T, s):
    turns = np.sign(rng.uniform(-1, 1)) * _u(rng, 0.8, 1.5)
    return _track(T, _u(rng, 0.4, 0.6) * s, _u(rng, 0.4, 0.6) * s, 1.0, 2 * math.pi * turns * np.arange(T) / T)


def _swing(rng, T, s):
    theta = _u(rng, 0.6, 0.9) * np.sin(2 * math.pi * _u(rng, 1.0, 1.6) * np.arange(T) / T + _u(rng, 0, 6.3))
    return _track(T, 0.15 * s + 0.55 * s * np.cos(theta), s / 2 + 0.4 * s * np.sin(theta), 1.0, -theta)


def _zigzag(rng, T, s):
    tri = np.abs(((np.arange(T) / T * _u(rng, 2.5, 3.5)) % 2.0) - 1.0)
    x = np.linspace(0.2 * s, 0.8 * s, T)
    return _track(T, (0.25 + 0.5 * tri) * s, x if rng.random() < 0.5 else x[::-1])


def _hop(rng, T, s):
    phase = (np.arange(T) / T * _u(rng, 1.5, 2.5) + _u(rng, 0, 1)) % 1.0
    up = np.clip(4 * phase * (1 - phase) * 1.4 - 0.4, 0, 1)  # parabolic hops with a rest on the ground
    return _track(T, 0.75 * s - 0.45 * s * up, _u(rng, 0.35, 0.65) * s, 1.0 - 0.15 * (up == 0))


def _shake(rng, T, s):
    return _track(T, _u(rng, 0.4, 0.6) * s,
                  s / 2 + 0.08 * s * np.sin(2 * math.pi * _u(rng, 5, 7) * np.arange(T) / T), 1.0)


def _drift(rng, T, s):
    return _track(T, smooth_path(rng, T, 0.3 * s, 0.7 * s, knots=3), smooth_path(rng, T, 0.3 * s, 0.7 * s, knots=3))


UCF_CLASSES: dict[str, Motion] = {"Bouncing": _bouncing, "Orbiting": _orbiting, "Pulsing": _pulsing,
                                  "Sliding": _sliding, "Spinning": _spinning}
HMDB_CLASSES: dict[str, Motion] = {"drift": _drift, "hop": _hop, "shake": _shake, "swing": _swing, "zigzag": _zigzag}


# --- rendering ---

def _render(rng: np.random.Generator, s: int, tracks: list[tuple[Sprite, Track]], bg_photo: int,
            camera: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """uint8 (T, s, s, 3): the sprites pasted in order (later ones occlude) over a background that
    pans by ``camera`` (y, x offsets into a texture twice the frame size) or stays still."""
    T = len(tracks[0][1][0])
    bg = texture(rng, 2 * s if camera else s, 2 * s if camera else s, bg_photo)
    out = np.empty((T, s, s, 3), np.uint8)
    for t in range(T):
        frame = pan(bg, s, s, camera[0][t], camera[1][t]) if camera else bg.copy()
        for sprite, (y, x, sc, ang) in tracks:
            paste(frame, None, sprite, (float(y[t]), float(x[t])), scale=float(sc[t]), angle=float(ang[t]))
        out[t] = to_uint8(frame)
    return out


def _object(rng: np.random.Generator, s: int, photo: int, frac: float = 0.34) -> Sprite:
    """A blob about ``frac`` of the frame wide; its texture packs a wide crop of the photo (zoom 3–6)
    so that the object shows the photo's structure rather than a flat patch of it."""
    side = max(4, round(frac * s))
    return Sprite(texture(rng, side, side, photo, zoom=(3.0, 6.0)), blob_mask(rng, side, side))


def _motion_video(rng: np.random.Generator, spec: VideoSpec, motion: Motion, class_photo: int) -> np.ndarray:
    photos = pick_photos(rng, 2)
    obj = class_photo if rng.random() < spec.context_prob else photos[0]
    bg = photos[1] if photos[1] != obj else photos[0]
    s = spec.rec_hw
    return _render(rng, s, [(_object(rng, s, obj), motion(rng, spec.frames, s))], bg)


def _ucf101(root: Path, rng: np.random.Generator, spec: VideoSpec) -> None:
    """``UCF-101/<Class>/v_<Class>_gXX_c01.avi`` + ``ucfTrainTestlist``: split k tests the k-th third of
    the groups, as the real split k tests groups 7(k-1)+1 .. 7k of 25."""
    classes = sorted(UCF_CLASSES)
    class_photos = pick_photos(rng, len(classes))
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_bytes("".join(f"{i} {c}\r\n" for i, c in enumerate(classes, 1)).encode())
    rel = {}
    for i, c in enumerate(classes):
        for g in range(1, spec.groups + 1):
            rel[(c, g)] = f"{c}/v_{c}_g{g:02d}_c01.avi"
            write_video(root / "UCF-101" / rel[(c, g)], _motion_video(rng, spec, UCF_CLASSES[c], class_photos[i]), 25)
    per = max(1, spec.groups // 3)
    for k in (1, 2, 3):
        test_groups = set(range((k - 1) * per + 1, k * per + 1))
        train = [f"{rel[(c, g)]} {i}\r\n" for i, c in enumerate(classes, 1) for g in range(1, spec.groups + 1) if g not in test_groups]
        test = [f"{rel[(c, g)]}\r\n" for c in classes for g in sorted(test_groups)]
        (lists / f"trainlist{k:02d}.txt").write_bytes("".join(train).encode())
        (lists / f"testlist{k:02d}.txt").write_bytes("".join(test).encode())


def _hmdb51(root: Path, rng: np.random.Generator, spec: VideoSpec) -> None:
    """``<class>/<video>.avi`` + ``testTrainMulti_7030_splits/<class>_test_split<k>.txt`` (1 train, 2
    test, 0 unused; one unused video per class and split, as the real 70/30 splits leave some out)."""
    classes = sorted(HMDB_CLASSES)
    class_photos = pick_photos(rng, len(classes))
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    n = spec.groups + 1
    n_test = max(1, n // 3)
    for i, c in enumerate(classes):
        names = [f"Toy{j:02d}_{c}_f_cm_np1_ri_med_0.avi" for j in range(n)]
        for name in names:
            write_video(root / c / name, _motion_video(rng, spec, HMDB_CLASSES[c], class_photos[i]), 30)
        for k in (1, 2, 3):
            off = (k - 1) * n_test
            test, unused = {(off + j) % n for j in range(n_test)}, (off + n_test) % n
            marks = ["2" if j in test else "0" if j == unused else "1" for j in range(n)]
            (splits / f"{c}_test_split{k}.txt").write_text("".join(f"{v} {m} \n" for v, m in zip(names, marks)))


SSV2_AXES = (("Moving [something] from left to right", "Moving [something] from right to left",
              "Shaking [something] left and right", "x"),
             ("Moving [something] down", "Moving [something] up", "Shaking [something] up and down", "y"))


def ssv2_order(kind: int, T: int, flip: bool) -> np.ndarray:
    """Frame order of class ``kind`` (0 forward, 1 reversed, 2 shaking) over ``T`` rendered frames.

    Shaking interleaves the two halves of the path (0, 4, 1, 5, 2, 6, 3, 7 for 8 frames): the same
    frames as the other two classes, jumping back and forth at about T/2 times the speed; ``flip``
    reverses it.
    """
    if kind == 0:
        return np.arange(T)
    if kind == 1:
        return np.arange(T)[::-1].copy()
    half = (T + 1) // 2
    order = np.full(2 * half, -1)
    order[0::2], order[1:2 * (T - half) + 1:2] = np.arange(half), np.arange(half, T)
    order = order[order >= 0]
    return order[::-1].copy() if flip else order


def _handheld(rng: np.random.Generator, s: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """A steady hand-held pan of 0.3 frame sides in a random direction (offsets into the 2s-wide texture)."""
    angle = rng.uniform(0, 2 * math.pi)
    d = 0.3 * s * np.array([math.cos(angle), math.sin(angle)])
    start = rng.uniform(0, s - np.abs(d)) + np.maximum(-d, 0)
    return start[0] + np.linspace(0, 1, T) * d[0], start[1] + np.linspace(0, 1, T) * d[1]


def _ssv2(root: Path, rng: np.random.Generator, spec: VideoSpec) -> None:
    """``20bn-something-something-v2/<id>.webm`` + ``labels/{labels,train,validation}.json``."""
    s, T = spec.ssv2_hw, spec.ssv2_frames
    templates = sorted(t for axis in SSV2_AXES for t in axis[:3])
    names = [t.replace("[", "").replace("]", "") for t in templates]
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "labels.json").write_text(json.dumps({n: str(i) for i, n in enumerate(names)}, indent=1))
    vid = 1000
    for subset, per_class in (("train", spec.ssv2_train), ("validation", spec.ssv2_val)):
        entries = []
        for *classes, axis in SSV2_AXES:
            for k in range(3 * per_class):
                photos = pick_photos(rng, 2)
                along = np.linspace(0.2 * s, 0.8 * s, T) + rng.uniform(-0.05, 0.05) * s
                across = smooth_path(rng, T, 0.35 * s, 0.65 * s, knots=3)
                track = _track(T, along, across) if axis == "y" else _track(T, across, along)
                frames = _render(rng, s, [(_object(rng, s, photos[0]), track)], photos[1], _handheld(rng, s, T))
                vid += 1
                order = ssv2_order(k % 3, T, bool(rng.integers(2)))
                write_video(root / "20bn-something-something-v2" / f"{vid}.webm", frames[order], 12)
                thing = PHOTO_NAMES[photos[0]].replace("_", " ")
                template = classes[k % 3]
                entries.append({"id": str(vid), "label": template.replace("[something]", thing).lower(),
                                "template": template, "placeholders": [thing]})
        (root / "labels" / f"{subset}.json").write_text(json.dumps(entries, indent=1))


def _scene(rng: np.random.Generator, s: int, T: int) -> np.ndarray:
    """2–3 textured objects on smooth paths with changing scale, over a slowly panning background."""
    photos = pick_photos(rng, 4)
    tracks = []
    for p in photos[1:1 + int(rng.integers(2, 4))]:
        y, x = smooth_path(rng, T, 0.2 * s, 0.8 * s), smooth_path(rng, T, 0.2 * s, 0.8 * s)
        tracks.append((_object(rng, s, p, _u(rng, 0.25, 0.4)), (y, x, smooth_path(rng, T, 0.8, 1.3, knots=3),
                                                                smooth_path(rng, T, -0.5, 0.5, knots=3))))
    camera = (smooth_path(rng, T, 0, s, knots=2), smooth_path(rng, T, 0, s, knots=2))
    return _render(rng, s, tracks, photos[0], camera)


def _kinetics(root: Path, rng: np.random.Generator, spec: VideoSpec) -> None:
    """``train/<youtube_id>_<start:06d>_<end:06d>.mp4`` + ``annotations/train.csv`` (the CVDF layout)."""
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    rows = []
    for _ in range(spec.kinetics):
        yt = "".join(rng.choice(alphabet, 11))
        start = int(rng.integers(0, 300))
        write_video(root / "train" / f"{yt}_{start:06d}_{start + 10:06d}.mp4", _scene(rng, spec.hw, spec.kinetics_frames), 25)
        rows.append(["toy scene", yt, start, start + 10, "train"])
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    with open(root / "annotations" / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([["label", "youtube_id", "time_start", "time_end", "split"], *rows])


def _clips(root: Path, rng: np.random.Generator, spec: VideoSpec) -> None:
    for i in range(spec.clips):
        write_video(root / f"clip_{i:03d}.mp4", _scene(rng, spec.hw, 2 * spec.frames), 25)


THUMOS_CLASSES = ("Hop", "Swell", "Twirl")
THUMOS_FPS = 10.0


def _thumos_video(rng: np.random.Generator, spec: VideoSpec) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """A long clip and its segments (first frame, end frame exclusive, class)."""
    s, T = spec.hw, spec.thumos_frames
    segs, t = [], int(rng.integers(8, 20))
    while True:
        length = int(rng.integers(15, 31))
        if t + length > T - 5:
            break
        segs.append((t, t + length, int(rng.integers(len(THUMOS_CLASSES)))))
        t += length + int(rng.integers(12, 30))
    y, x = smooth_path(rng, T, 0.6 * s, 0.7 * s, knots=3), smooth_path(rng, T, 0.35 * s, 0.65 * s, knots=3)
    scale, angle = np.ones(T, np.float32), np.zeros(T, np.float32)
    for a, b, c in segs:
        u = np.arange(b - a) / (b - a)
        if THUMOS_CLASSES[c] == "Hop":
            y[a:b] -= 0.4 * s * np.abs(np.sin(2 * math.pi * u))
        elif THUMOS_CLASSES[c] == "Swell":
            scale[a:b] = 1.0 + 0.8 * np.sin(math.pi * u)
        else:
            angle[a:b] = 2 * math.pi * 2 * u
    photos = pick_photos(rng, 2)
    return _render(rng, s, [(_object(rng, s, photos[0]), (y, x, scale, angle))], photos[1]), segs


def _thumos(root: Path, rng: np.random.Generator, spec: VideoSpec) -> None:
    """``videos/<subset>/video_<subset>_XXXXXXX.mp4`` + ``annotations/thumos14.json`` (ActivityNet form)."""
    database = {}
    for subset, count in zip(("validation", "test"), spec.thumos):
        for i in range(1, count + 1):
            name = f"video_{subset}_{i:07d}"
            frames, segs = _thumos_video(rng, spec)
            write_video(root / "videos" / subset / f"{name}.mp4", frames, THUMOS_FPS)
            database[name] = {
                "subset": subset.capitalize(), "duration": len(frames) / THUMOS_FPS, "fps": THUMOS_FPS,
                "annotations": [{"label": THUMOS_CLASSES[c], "segment": [a / THUMOS_FPS, b / THUMOS_FPS],
                                 "segment(frames)": [a, b], "label_id": c} for a, b, c in segs],
            }
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "thumos14.json").write_text(json.dumps({"version": "toy", "database": database}, indent=1))


GENERATORS = {"UCF101": _ucf101, "HMDB51": _hmdb51, "SSv2": _ssv2, "kinetics": _kinetics,
              "THUMOS": _thumos, "clips": _clips}


def generate_video(root: Path, rng: np.random.Generator, size: str) -> None:
    """Write every video-level toy set under ``root/<folder>`` (the names of ``configs/datasets.yaml``).

    Deterministic given the state of ``rng``; ``size`` is a key of :data:`SIZES`.
    """
    if size not in SIZES:
        raise UserError(f"unknown toy size {size!r}: choose one of {', '.join(SIZES)}")
    for folder, gen in GENERATORS.items():
        gen(Path(root) / folder, np.random.default_rng(rng.integers(2**63)), SIZES[size])
