"""Segments from frame scores and ActivityNet/THUMOS mAP@tIoU on hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.metrics.localisation import Detection, map_at_tiou, segments_from_scores


def test_segments_from_scores_runs_seconds_and_scores():
    scores = np.zeros((10, 2))
    scores[2:5, 0] = [0.6, 0.9, 0.6]  # frames 2..4 → [1.0 s, 2.5 s] at 2 fps
    scores[8:10, 1] = 0.8             # frames 8..9, touching the end → [4.0 s, 5.0 s]
    scores[6, 0] = 0.49               # below threshold
    dets = segments_from_scores(scores, fps=2.0, threshold=0.5, video="v")
    assert dets == [Detection("v", 0, 1.0, 2.5, pytest.approx(0.7)), Detection("v", 1, 4.0, 5.0, pytest.approx(0.8))]
    assert [d.label for d in segments_from_scores(scores, 2.0, 0.5, "v", min_frames=3)] == [0]


def test_map_at_tiou_hand_computed():
    gt = [Detection("a", 0, 0, 10, 1), Detection("a", 0, 20, 30, 1), Detection("a", 1, 0, 10, 1)]
    det = [
        Detection("a", 0, 0, 10, 0.9),    # tIoU 1 with gt 1: TP
        Detection("a", 0, 0, 10, 0.85),   # duplicate of a matched gt: FP
        Detection("a", 0, 21, 31, 0.8),   # tIoU 9/11 = 0.82 with gt 2: TP at every threshold
        Detection("b", 0, 0, 10, 0.1),    # a video without ground truth: FP (after both TPs)
        Detection("a", 1, 0, 5, 0.7),     # tIoU exactly 0.5: TP up to 0.5, FP above
        Detection("a", 2, 0, 5, 0.7),     # class without ground truth: not averaged in
    ]
    m = map_at_tiou(gt, det, (0.3, 0.5, 0.6, 0.7))
    # class 0: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 → interpolated AP = ½·1 + ½·⅔ = 5/6
    # class 1: AP 1 for tIoU ≤ 0.5, 0 above
    expected = {"mAP@0.3": 11 / 12, "mAP@0.5": 11 / 12, "mAP@0.6": 5 / 12, "mAP@0.7": 5 / 12}
    assert {k: m[k] for k in expected} == pytest.approx(expected)
    assert m["mAP_avg"] == pytest.approx(np.mean(list(expected.values())))


def test_map_perfect_and_empty_predictions():
    gt = [Detection("a", 0, 1, 2, 1), Detection("b", 1, 3, 5, 1)]
    assert map_at_tiou(gt, gt)["mAP_avg"] == pytest.approx(1.0)
    assert map_at_tiou(gt, [])["mAP_avg"] == 0.0


def test_thumos_localisation_end_to_end_on_toy(toy_root, tmp_path):
    from tests.tasks.toy_setup import check_samples, frozen_run

    task, out = frozen_run(toy_root, "thumos_loc", tmp_path)
    check_samples(task, out, out.details["num_test"])
    s = out.samples
    assert sum(len(d) for d in s["detections"]) == out.details["num_detections"]
    one = {k: v[:1] for k, v in s.items()}  # one video's own mAP is its per-video score
    assert task.aggregate(one) == pytest.approx(s["mAP@0.5"][0])
    twice = {k: v + v for k, v in s.items()}  # a video drawn twice counts as two videos: AP unchanged
    assert task.aggregate(twice) == pytest.approx(out.metrics["mAP@0.5"])
    m = out.metrics
    assert set(m) >= {"mAP@0.3", "mAP@0.5", "mAP@0.7", "mAP_avg", "frame_accuracy"}
    assert m["mAP@0.3"] >= m["mAP@0.5"] >= m["mAP@0.7"]
    assert 0.0 <= m["frame_accuracy"] <= 1.0 and out.details["num_detections"] > 0
    assert out.details["num_train"] == 24 and out.details["num_test"] == 12 and out.details["num_classes"] == 3


def test_a_warm_feature_cache_decodes_no_thumos_frame(toy_root, tmp_path, monkeypatch):
    """THUMOS frames are keyed on their files (benchmark.data.frames), like every other task's: the second
    evaluation through a warm cache reads tokens only, and scores the same."""
    import benchmark.data.frames as frames
    from benchmark.backbones import build_backbone
    from benchmark.cache import install
    from methods.frozen import Frozen
    from tests.tasks.toy_setup import toy_ctx, toy_task

    task, method = toy_task("thumos_loc", iterations=100), Frozen(build_backbone("efficientnet_lite0"), {})
    cache = install(method, tmp_path / "features")
    cold = task.evaluate(method, toy_ctx(toy_root, tmp_path / "work"))

    def no_decoding(path, *args, **kwargs):
        raise AssertionError(f"a warm cache decoded {path}")

    monkeypatch.setattr(frames, "read_video", no_decoding)
    warm = task.evaluate(method, toy_ctx(toy_root, tmp_path / "work"))
    assert warm.metrics == cold.metrics and cache.stats.hits > 0
