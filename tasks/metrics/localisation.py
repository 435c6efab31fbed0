"""Temporal action localisation: segments from per-frame scores, and mAP at temporal IoU.

mAP follows the ActivityNet / THUMOS-14 detection definition: for each class, predictions of all
videos are sorted by score, greedily matched to the highest-tIoU unmatched ground-truth instance of
that class and video, AP is the interpolated area under the precision/recall curve, and mAP is the
mean over the classes that have ground truth, reported per tIoU threshold (THUMOS-14: 0.3…0.7).
The per-class AP is mmaction2's ``compute_average_precision_detection`` (a port of the ActivityNet
``Evaluation/eval_detection.py``), imported lazily because ``mmaction`` takes seconds to import.

Segments from scores are the simplest detector for a per-frame classifier (as in frame-wise
baselines of Shou et al., CVPR 2016/2017): for each class, maximal runs of frames whose score is at
least ``threshold`` become one segment scored by the mean frame score inside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from benchmark.errors import UserError


@dataclass(frozen=True)
class Detection:
    """A predicted segment in seconds."""

    video: str
    label: int
    start: float
    end: float
    score: float


def segments_from_scores(scores: np.ndarray, fps: float, threshold: float, video: str,
                         classes: Sequence[int] | None = None, min_frames: int = 1) -> list[Detection]:
    """Detections from per-frame class scores ``(T, K)``.

    Frame ``t`` covers ``[t/fps, (t+1)/fps)``, so a run of frames ``a..b`` becomes ``[a/fps, (b+1)/fps]``.

    Args:
        scores: ``(T, K)`` per-frame probabilities (or any scores) for the ``K`` action classes.
        fps: frames per second of the frames the scores belong to.
        threshold: a frame belongs to a class's segment when its score is ≥ this value.
        video: the video id written into each detection.
        classes: which columns to scan (default: all).
        min_frames: runs shorter than this are dropped.
    """
    if fps <= 0:
        raise UserError(f"video {video}: fps must be positive to turn frames into seconds, got {fps}")
    out: list[Detection] = []
    for k in range(scores.shape[1]) if classes is None else classes:
        on = np.concatenate([[False], scores[:, k] >= threshold, [False]])
        edges = np.flatnonzero(on[1:] != on[:-1])
        for a, b in zip(edges[0::2], edges[1::2]):  # run is frames a .. b-1
            if b - a >= min_frames:
                out.append(Detection(video, int(k), a / fps, b / fps, float(scores[a:b, k].mean())))
    return out


def map_at_tiou(ground_truth: Sequence[Detection], detections: Sequence[Detection],
                thresholds: Sequence[float] = (0.3, 0.4, 0.5, 0.6, 0.7)) -> dict[str, float]:
    """ActivityNet/THUMOS mAP at each tIoU threshold, plus their average.

    Args:
        ground_truth: annotated segments (``score`` is ignored).
        detections: predicted segments with scores.
        thresholds: tIoU thresholds.

    Returns:
        ``{"mAP@0.3": …, …, "mAP_avg": …}``, each in [0, 1].
    """
    from mmaction.evaluation.functional.eval_detection import compute_average_precision_detection

    if not ground_truth:
        raise UserError("localisation ground truth has no segments: check the annotation file's 'annotations' lists")
    labels = sorted({g.label for g in ground_truth})
    tiou = np.asarray(thresholds, dtype=float)
    ap = np.zeros((len(tiou), len(labels)))
    for j, label in enumerate(labels):
        gts = [{"video-id": g.video, "t-start": g.start, "t-end": g.end} for g in ground_truth if g.label == label]
        preds = [{"video-id": d.video, "t-start": d.start, "t-end": d.end, "score": d.score}
                 for d in detections if d.label == label]
        ap[:, j] = compute_average_precision_detection(gts, preds, tiou)
    per_t = ap.mean(axis=1)
    out = {f"mAP@{t:g}": float(v) for t, v in zip(tiou, per_t)}
    out["mAP_avg"] = float(per_t.mean())
    return out
