"""THUMOS-14-style temporal action localisation with a linear per-frame classifier.

A probe of how well per-frame features separate actions in time, not a full detector: every
``frame_stride``-th frame of each video is embedded with ``method.frame_features`` (spatially
averaged; for temporal methods these are temporally mixed tokens), a linear classifier over the
K action classes plus background is trained on the THUMOS *validation* videos (the standard
THUMOS-14 training set) in the DINOv2 manner of :mod:`tasks.classification`, and on the *test*
videos each class's softmax score is thresholded into segments (:mod:`tasks.metrics.localisation`),
scored with the ActivityNet/THUMOS mAP at tIoU 0.3 … 0.7.

A frame is labelled with the class of the ground-truth segment containing its centre time,
background otherwise (the first segment wins where annotations overlap).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from benchmark.context import RunContext
from benchmark.errors import UserError
from tasks.base import Task, TaskMeta, TaskOutput
from tasks.classification import train_linear_classifiers
from benchmark.data.types import LocalisationVideo
from benchmark.data.video import centre_crop, read_video, to_tensor
from tasks.metrics.localisation import Detection, map_at_tiou, segments_from_scores


def frame_labels(video: LocalisationVideo, frames: np.ndarray, background: int) -> torch.Tensor:
    """Class of each frame index in ``frames`` from the segment holding its centre time."""
    t = (frames + 0.5) / video.fps
    labels = np.full(len(frames), background, dtype=np.int64)
    for seg in reversed(video.segments):  # reversed, so the first listed segment is written last
        labels[(t >= seg.start) & (t < seg.end)] = seg.label
    return torch.from_numpy(labels)


def per_frame_features(method: Any, video: LocalisationVideo, cfg: dict[str, Any]) -> tuple[np.ndarray, torch.Tensor]:
    """Frame indices and their spatially pooled features ``(T, C)``, computed in chunks of frames."""
    frames = np.arange(0, video.num_frames, int(cfg["frame_stride"]))
    chunk = int(cfg["chunk_frames"])
    feats = []
    with torch.inference_mode():
        for i in range(0, len(frames), chunk):
            x = centre_crop(to_tensor(read_video(video.path, frames[i : i + chunk]), int(cfg["short_side"])), int(cfg["crop"]))
            feats.append(method.frame_features(x).float().mean(dim=(1, 2)).cpu())
    return frames, torch.cat(feats)


class ThumosLocalisation(Task):
    """THUMOS-14-style temporal action localisation, mAP@tIoU."""

    meta = TaskMeta(name="thumos_loc", dataset="thumos", main_metric="mAP@0.5",
                    protocol="THUMOS-14 validation → test; linear per-frame probe, thresholded segments, "
                             "ActivityNet/THUMOS mAP at tIoU 0.3:0.7")

    def _features(self, method: Any, videos: list[LocalisationVideo], background: int, ctx: RunContext, desc: str):
        it = videos
        if ctx.progress:
            from tqdm import tqdm

            it = tqdm(videos, desc=desc, leave=False)
        out = []
        for v in it:
            frames, feats = per_frame_features(method, v, self.config)
            out.append((v, frames, feats, frame_labels(v, frames, background)))
        return out

    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        from benchmark.data.thumos import load_thumos

        cfg = self.config
        root = ctx.dataset_path("thumos")
        train, classes = load_thumos(root, cfg["train_subset"])
        test, _ = load_thumos(root, cfg["test_subset"])
        k = len(classes)
        tr = self._features(method, train, k, ctx, "train videos")
        x = torch.cat([f for _, _, f, _ in tr])
        y = torch.cat([lab for _, _, _, lab in tr])
        if int((y < k).sum()) == 0:
            raise UserError(f"{self.meta.name}: no training frame falls inside an annotated segment; check the '{cfg['train_subset']}' annotations")
        w, b = train_linear_classifiers(x, y, k + 1, [float(cfg["lr"])], int(cfg["iterations"]),
                                        int(cfg["linear_batch_size"]), ctx.seed)
        detections: list[Detection] = []
        ground_truth: list[Detection] = []
        frame_hits, frame_total = 0, 0
        for v, frames, feats, labels in self._features(method, test, k, ctx, "test videos"):
            probs = torch.softmax(feats @ w[0] + b[0], dim=1)
            frame_hits += int((probs.argmax(1) == labels).sum())
            frame_total += len(labels)
            detections += segments_from_scores(probs[:, :k].numpy(), v.fps / int(cfg["frame_stride"]),
                                               float(cfg["score_threshold"]), v.name, min_frames=int(cfg["min_frames"]))
            ground_truth += [Detection(v.name, s.label, s.start, s.end, 1.0) for s in v.segments]
        metrics = map_at_tiou(ground_truth, detections, [float(t) for t in cfg["tiou_thresholds"]])
        metrics["frame_accuracy"] = frame_hits / max(frame_total, 1)
        details = {"num_train": len(train), "num_test": len(test), "num_classes": k, "num_detections": len(detections)}
        return TaskOutput(metrics=metrics, details=details)
