"""The video-level toy sets mean what they claim: classes defined by motion (UCF101/HMDB51), classes
defined only by temporal order (SSv2: direction, and shaking), action segments that are visible (THUMOS); generation is
deterministic and the completion marker makes a second call free."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

import benchmark.data.toy.dense as toy_dense
import benchmark.data.toy.video as toy_video
from benchmark.data.hmdb51 import load_hmdb51
from benchmark.data.ssv2 import load_ssv2
from benchmark.data.thumos import load_thumos
from benchmark.data.toy import MARKER, generate
from benchmark.data.ucf101 import load_ucf101
from benchmark.data.video import read_video


def _grey(path) -> np.ndarray:
    return read_video(path).astype(np.float32).mean(-1) / 255.0


def _diff_centroids(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step t→t+1: the centroid (y, x, as fractions of the frame) and total of |frame difference|."""
    d = np.abs(np.diff(f, axis=0))
    w = d.sum(axis=(1, 2)) + 1e-6
    cy = (d.sum(2) * np.arange(f.shape[1])).sum(1) / w / f.shape[1]
    cx = (d.sum(1) * np.arange(f.shape[2])).sum(1) / w / f.shape[2]
    return cy, cx, w


def _grid(img: np.ndarray, n: int = 12) -> np.ndarray:
    """Mean of ``img`` over an ``n × n`` grid of cells, flattened."""
    h, w = img.shape
    return img[: h - h % n, : w - w % n].reshape(n, h // n, n, w // n).mean(axis=(1, 3)).ravel()


def _loo_nearest_mean(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leave-one-out predictions of a nearest-class-mean classifier on standardised features."""
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    classes = np.unique(y)
    pred = []
    for i in range(len(X)):
        keep = np.arange(len(X)) != i
        means = np.stack([X[keep & (y == c)].mean(0) for c in classes])
        pred.append(classes[np.argmin(((means - X[i]) ** 2).sum(1))])
    return np.array(pred)


def test_ssv2_toy_classes_differ_only_in_temporal_order(toy_root):
    """The temporal-order check, on the decoded videos (leave-one-out nearest-class-mean).

    * order-blind: the per-pixel temporal mean and standard deviation on a 12×12 grid — functions of
      the multiset of frames, which the three classes of an axis share: near chance (≤ 40 %, chance
      17 %; the axis is partly visible in where things move).
    * order-sensitive: the mean and spread of |frame t+1 − frame t|, over the mean distance between
      any two frames (the camera pans, at a speed that varies by video) — shaking jumps back and
      forth, so it tells shaking from sliding (≥ 95 %, chance 67 %) although the frames are the same.
    That the direction pair is an exact reversal is checked on the generator's orders below.
    """
    train, val, classes = load_ssv2(toy_root / "SSv2")
    assert len(classes) == 6 and len(val) >= 200
    shaking = {i for i, c in enumerate(classes) if c.startswith("Shaking")}
    blind, ordered, y = [], [], []
    for v in train + val:
        f = _grey(v.path)
        blind.append(np.concatenate([_grid(f.mean(0)), _grid(f.std(0))]))
        step = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2))
        scale = np.abs(f[None] - f[:, None]).mean(axis=(2, 3))[np.triu_indices(len(f), 1)].mean()  # order-free
        ordered.append([step.mean() / scale, step.std() / scale])
        y.append(v.label)
    blind, ordered, y = np.array(blind), np.array(ordered), np.array(y)
    assert (_loo_nearest_mean(blind, y) == y).mean() <= 0.40
    shake = np.isin(y, list(shaking))
    assert (_loo_nearest_mean(ordered, shake) == shake).mean() >= 0.95


def test_ssv2_orders_hold_the_same_frames():
    """Forward, reversed and shaking (either way round) are permutations of the same frames."""
    for T in (6, 8, 9):
        for kind in range(3):
            for flip in (False, True):
                assert sorted(toy_video.ssv2_order(kind, T, flip)) == list(range(T))
    assert toy_video.ssv2_order(1, 8, False).tolist() == toy_video.ssv2_order(0, 8, False).tolist()[::-1]
    assert toy_video.ssv2_order(2, 8, False).tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert toy_video.ssv2_order(2, 7, True).tolist() == [3, 6, 2, 5, 1, 4, 0]


@pytest.mark.parametrize("loader, folder", [(load_ucf101, "UCF101"), (load_hmdb51, "HMDB51")])
def test_recognition_toy_classes_are_defined_by_motion(toy_root, loader, folder):
    """A 5-number motion descriptor (spread and speed of the |frame difference| centroid, variation of
    its energy) names the class of ≥ 80 % of the videos (leave-one-out, chance 20 %)."""
    train, test, classes = loader(toy_root / folder)
    X, y = [], []
    for v in train + test:
        cy, cx, w = _diff_centroids(_grey(v.path))
        X.append([cx.std(), cy.std(), np.abs(np.diff(cx)).mean(), np.abs(np.diff(cy)).mean(), w.std() / w.mean()])
        y.append(v.label)
    assert (_loo_nearest_mean(np.array(X), np.array(y)) == np.array(y)).mean() >= 0.8


def test_thumos_toy_segments_are_where_the_action_is(toy_root):
    """Inside annotated segments the object hops, twirls or swells: the mean |frame difference| there is
    more than twice that of the idle frames outside."""
    for subset in ("validation", "test"):
        videos, _ = load_thumos(toy_root / "THUMOS", subset)
        for v in videos:
            _, _, w = _diff_centroids(_grey(v.path))
            inside = np.zeros(len(w), bool)
            for s in v.segments:
                inside[round(s.start * v.fps):round(s.end * v.fps) - 1] = True
            assert w[inside].mean() > 2 * w[~inside].mean(), v.name


def test_toy_rendering_is_deterministic():
    spec = toy_video.SIZES["small"]
    a, segs_a = toy_video._thumos_video(np.random.default_rng(5), spec)
    b, segs_b = toy_video._thumos_video(np.random.default_rng(5), spec)
    c, _ = toy_video._thumos_video(np.random.default_rng(6), spec)
    np.testing.assert_array_equal(a, b)
    assert segs_a == segs_b and not np.array_equal(a, c)


def test_marker_skips_and_regenerates(toy_root, tmp_path, monkeypatch):
    marker = json.loads((toy_root / MARKER).read_text())
    assert marker["seed"] == 0 and marker["size"] == "small"
    stamp = (toy_root / "SSv2" / "labels" / "train.json").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert generate(toy_root, seed=0, size="small") == toy_root
    assert time.perf_counter() - t0 < 1.0
    assert (toy_root / "SSv2" / "labels" / "train.json").stat().st_mtime_ns == stamp
    # another seed over an old toy folder: stale files go, generators run again, the marker is rewritten
    calls = []
    monkeypatch.setattr(toy_dense, "generate_dense", lambda root, rng, size: calls.append("dense"))
    monkeypatch.setattr(toy_video, "generate_video", lambda root, rng, size: calls.append("video"))
    (tmp_path / "UCF101").mkdir()
    (tmp_path / "UCF101" / "stale.avi").write_bytes(b"old")
    (tmp_path / MARKER).write_text(json.dumps({"seed": 3, "size": "small", "version": 0}))
    generate(tmp_path, seed=1, size="small")
    assert calls == ["dense", "video"] and not (tmp_path / "UCF101").exists()
    assert json.loads((tmp_path / MARKER).read_text())["seed"] == 1
