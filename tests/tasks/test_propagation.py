"""The propagation engine: equal to the dense reference, the published context rules, and behaviour."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from benchmark.errors import UserError
from tasks.dense import video_features
from tasks.propagation import (
    PRESETS,
    context_frames,
    decode_keypoints,
    grid_to_labels,
    input_size,
    keypoint_heatmaps,
    labels_to_grid,
    nearest_indices,
    neighbourhood,
    propagate,
    propagate_dense,
    resolve,
)


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: one thread avoids OpenMP barrier stalls on a shared, loaded CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("tile", [0, 3])
def test_engine_equals_dense_reference(preset, tile):
    torch.manual_seed(0)
    cfg = dataclasses.replace(PRESETS[preset]["davis"][0], n_context=3, radius=3.5, tile=tile)
    feats = torch.randn(7, 10, 13, 24)
    first = torch.softmax(3 * torch.randn(10, 13, 4), -1)
    fast, ref = propagate(feats, first, cfg), propagate_dense(feats, first, cfg)
    assert torch.equal(fast.argmax(-1), ref.argmax(-1))
    assert torch.allclose(fast, ref, atol=1e-6)


def test_context_rules_of_the_presets():
    crw, dino = PRESETS["crw"]["davis"][0], PRESETS["dino"]["davis"][0]
    # CRW/T-CORE: unrestricted frame 0, then a bank padded with n copies of frame 0
    assert context_frames(1, crw) == [(0, 1, False), (0, 20, True)]
    assert context_frames(5, crw) == [(0, 1, False), (0, 16, True), (1, 1, True), (2, 1, True), (3, 1, True), (4, 1, True)]
    assert context_frames(30, crw) == [(0, 1, False)] + [(f, 1, True) for f in range(10, 30)]
    # DINO: frame 0 plus at most 7 previous frames, all restricted, no repetition
    assert context_frames(1, dino) == [(0, 1, True)]
    assert context_frames(12, dino) == [(0, 1, True)] + [(f, 1, True) for f in range(5, 12)]


def test_neighbourhood_shapes():
    e = neighbourhood((5, 5), 2.0, "euclidean").view(5, 5, 5, 5)
    assert e[2, 2, 3, 3] and not e[2, 2, 2, 4]  # distance sqrt(2) < 2, distance 2 is not (strict)
    s = neighbourhood((5, 5), 1.0, "square").view(5, 5, 5, 5)
    assert s[2, 2, 3, 3] and not s[2, 2, 2, 4]


def test_translation_is_tracked():
    # frame t is frame 0 moved right by t cells: with top-1 votes the labels move with the content
    torch.manual_seed(1)
    base = torch.randn(8, 20, 16)
    feats = torch.stack([torch.roll(base, t, dims=1) for t in range(4)])
    labels = torch.zeros(8, 20, dtype=torch.long)
    labels[2:6, 4:9] = 1
    first = labels_to_grid(labels, torch.tensor([0, 1]), (8, 20), "nearest")
    cfg = dataclasses.replace(PRESETS["cosettle"]["davis"][0], topk=1, radius=3)
    out = propagate(feats, first, cfg).argmax(-1)
    for t in range(1, 4):
        assert torch.equal(out[t][:, 3:], torch.roll(labels, t, dims=1)[:, 3:])


def test_crw_heatmap_is_draw_labelmap_np():
    """sigma 0.5: a 4x4 patch from int(p - 1.5), peak at patch index 2, offsets -2..+1."""
    heat = keypoint_heatmaps(torch.tensor([[5.3, 2.7], [1.0, 0.4]]), (8, 12), 0.5, "crw")
    j = heat[..., 1]
    assert j[3, 5] == 1.0 and j.argmax() == 3 * 12 + 5  # peak on the rounded cell (x 5, y 3)
    assert j[3, 6] == pytest.approx(math.exp(-2)) and j[3, 3] == pytest.approx(math.exp(-8))  # offsets +1, -2
    assert j[3, 7] == 0 and j[0, 5] == 0 and (j > 0).sum() == 16  # offset +2 is outside the patch
    # near the border int() truncates toward zero: x 1.0 -> int(-0.5) = 0, so the peak is cell 2, not 1
    k = heat[..., 2]
    # y 0.4: rows int(-1.1) = -1 .. int(2.9) = 2 (exclusive), so rows 0, 1; x: columns 0 .. int(3.5) = 3 (exclusive)
    assert k[1, 2] == 1.0 and (k > 0).sum() == 2 * 3


def test_keypoint_heatmap_round_trip():
    pts = torch.tensor([[3.0, 4.0], [10.25, 2.5], [0.0, 0.0]])
    heat = keypoint_heatmaps(pts, (8, 12), 0.5, "exact")
    assert heat.shape == (8, 12, 4)
    assert heat[4, 3, 1] == 1.0 and heat[7, 11, 0] == 1.0 and heat[4, 3, 0] == 0.0
    dec = decode_keypoints(heat, 1)
    assert torch.equal(dec[0], pts[0]) and torch.equal(dec[2], pts[2])
    lost = heat.clone()
    lost[..., 2] = 0
    assert torch.isnan(decode_keypoints(lost, 5)[1]).all()


def test_resolution_rules_follow_the_scripts():
    assert input_size(["fixed", 480, 880], 480, 854, 16) == (480, 880)
    # DINO read_frame: th = 480, tw = int(480 * 854 / 480) // 64 * 64 = 832
    assert input_size(["short", 480, 64], 480, 854, 16) == (480, 832)
    # T-CORE vos.py with crop [880]: new_w = 880, new_h = int(480 * 880 / 854) // 64 * 64 = 448
    assert input_size(["long", 880, 64], 480, 854, 16) == (448, 880)
    assert input_size(["native"], 100, 150, 16) == (96, 144)


def test_resolve_presets_and_overrides():
    cfg, rule = resolve({"preset": "cosettle", "propagation": {"topk": None}}, "vip")
    assert (cfg.topk, cfg.temperature, cfg.radius, cfg.n_context, rule) == (10, 0.7, 20, 20, ["long", 880, 64])
    cfg, rule = resolve({"preset": "dino", "propagation": {"topk": 3}, "input_size": ["native"]}, "davis")
    assert (cfg.topk, cfg.temperature, rule) == (3, 0.1, ["native"])
    with pytest.raises(UserError, match="unknown preset"):
        resolve({"preset": "dinov3"}, "davis")
    with pytest.raises(UserError, match="must be an integer"):
        resolve({"preset": "crw", "propagation": {"topk": "ten"}}, "davis")
    with pytest.raises(UserError, match="temperature"):
        resolve({"preset": "crw", "propagation": {"temperature": 0}}, "davis")


class _Recorder:
    """A method that records the frames it is given and returns a 1-channel grid at stride 8."""

    class backbone:  # noqa: N801  (what video_features reads: the stride)
        stride = 8

    def frame_features(self, x):
        self.seen = x
        return x[:, :1, ::8, ::8].permute(0, 2, 3, 1)


@pytest.mark.parametrize("size", [(40, 64), (96, 160)])  # down- and upsampling of 64x104 frames
def test_cv2_frame_resize_is_cv2_linear(size):
    cv2 = pytest.importorskip("cv2")
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 104, 3), dtype=np.uint8)
    method = _Recorder()
    feats, got = video_features(method, frames, ["fixed", *size], "cv2")
    assert got == size and feats.shape[1:3] == (size[0] // 8, size[1] // 8)
    ref = np.stack([cv2.resize(f.astype(np.float32) / 255, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for f in frames])
    assert np.abs(method.seen.permute(0, 2, 3, 1).numpy() - ref).max() < 1e-5
    video_features(method, frames, ["fixed", *size], "antialias")
    assert (np.abs(method.seen.permute(0, 2, 3, 1).numpy() - ref).max() > 1e-3) == (size[0] < 64)  # antialias only shrinks


def test_upsampling_via_the_frame_then_nearest_as_cv2():
    cv2 = pytest.importorskip("cv2")
    soft = torch.rand(3, 5, 4, generator=torch.Generator().manual_seed(0))
    frame, size = (48, 80), (30, 52)
    via = grid_to_labels(soft, size, False, frame)
    at_frame = grid_to_labels(soft, frame, False)
    ref = cv2.resize(at_frame.numpy().astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(via.numpy(), ref)
    assert torch.equal(grid_to_labels(soft, frame, False, frame), at_frame)


@pytest.mark.parametrize("src,dst", [((480, 832), (480, 854)), ((30, 52), (480, 854)), ((128, 96), (6, 7)),
                                     ((37, 91), (113, 58)), ((854, 1080), (52, 30))])
def test_pil_nearest_equals_pil_resize(src, dst):
    """The ``pil`` rule is PIL's own ``Image.resize(..., NEAREST)`` (what DINO calls, mode 0) on random label
    maps, grown and shrunk; ``cv2`` is not (832 → 854 columns: 415 differ), so the rule matters."""
    from PIL import Image

    rng = np.random.default_rng(sum(src) + sum(dst))
    seg = rng.integers(0, 7, src, dtype=np.uint8)
    ref = np.asarray(Image.fromarray(seg).resize(dst[::-1], 0))
    rows, cols = (nearest_indices(s, d, "pil") for s, d in zip(src, dst))
    assert np.array_equal(seg[rows.numpy()][:, cols.numpy()], ref)
    classes = torch.arange(7)
    grid = labels_to_grid(torch.as_tensor(seg, dtype=torch.long), classes, dst, "nearest", "pil")
    assert np.array_equal(grid.argmax(-1).numpy(), ref)
    if src == (480, 832):
        assert int((nearest_indices(832, 854, "pil") != nearest_indices(832, 854, "cv2")).sum()) == 415


def test_final_nearest_rule_per_preset():
    """DINO resizes its label maps with PIL (``read_seg``; ``Image.fromarray(..).resize((ori_w, ori_h), 0)``),
    T-CORE with cv2: the ``dino`` preset alone uses PIL's rule, for the first frame and the output."""
    from PIL import Image

    assert {name: PRESETS[name]["davis"][0].index_resize for name in PRESETS} == {"cosettle": "cv2", "crw": "cv2", "dino": "pil"}
    cfg, _ = resolve({"preset": "dino", "propagation": {}}, "davis")
    soft = torch.rand(30, 52, 3, generator=torch.Generator().manual_seed(1))
    frame, size = (480, 832), (480, 854)
    at_frame = grid_to_labels(soft, frame, True).numpy().astype(np.uint8)
    got = grid_to_labels(soft, size, True, frame, cfg.index_resize).numpy()
    assert np.array_equal(got, np.asarray(Image.fromarray(at_frame).resize(size[::-1], 0)))
    assert not np.array_equal(got, grid_to_labels(soft, size, True, frame, "cv2").numpy())
