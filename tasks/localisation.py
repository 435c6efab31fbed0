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

mAP pools detections of all videos per class, so it is no mean over videos. Per-sample scores are per
test video (id: its path relative to the data set folder) and hold the AP *inputs*: ``detections``
(``[class, start s, end s, score]`` each) and ``ground_truth`` (``[class, start s, end s]``), from
which :meth:`ThumosLocalisation.aggregate` recomputes the main metric exactly for any resample of
videos (a video drawn twice counts as two videos); plus the video's own ``mAP@0.5`` (its detections
against its segments alone, the paired per-video score; for a video without segments 1 if it has no
detection, else 0, so the column stays finite), ``frame_accuracy`` and ``frames``.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from benchmark.context import RunContext
from benchmark.errors import UserError
from benchmark.schemas import Pos, PosFloat, Prob
from tasks.base import Task, TaskMeta, TaskOutput, relative_id
from tasks.classification import LinearProbeConfig, train_linear_classifiers
from benchmark.data.frames import Preprocess, load_frames
from benchmark.data.types import LocalisationVideo
from tasks.metrics.localisation import Detection, map_at_tiou, segments_from_scores
from benchmark.registry import TASKS


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
            # keyed on the file (benchmark.data.frames): a warm feature cache decodes nothing
            x = load_frames(video.path, frames[i : i + chunk], Preprocess(int(cfg["short_side"]), int(cfg["crop"])))
            feats.append(method.frame_features(x).float().mean(dim=(1, 2)).cpu())
    return frames, torch.cat(feats)


@TASKS.register("thumos_loc", "THUMOS-14-style temporal action localisation, mAP@tIoU")
class ThumosLocalisation(Task):
    """THUMOS-14-style temporal action localisation, mAP@tIoU."""

    meta = TaskMeta(name="thumos_loc", dataset="thumos", main_metric="mAP@0.5",
                    protocol="THUMOS-14 validation → test; linear per-frame probe, thresholded segments, "
                             "ActivityNet/THUMOS mAP at tIoU 0.3:0.7", sample_metric="mAP@0.5")
    version = 2  # 2: per-video samples (AP inputs)

    class Config(LinearProbeConfig):
        """configs/tasks/thumos_loc.yaml."""

        train_subset: Literal["validation", "test"]  # THUMOS-14's subsets (benchmark/data/thumos.py)
        test_subset: Literal["validation", "test"]
        tiou_thresholds: Annotated[list[Annotated[float, Field(gt=0, le=1)]], Field(min_length=1)]
        frame_stride: Pos
        chunk_frames: Pos
        short_side: Pos
        crop: Pos
        score_threshold: Prob
        min_frames: Pos
        lr: PosFloat

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
        samples: dict[str, list] = {k: [] for k in ("id", "mAP@0.5", "frame_accuracy", "frames", "detections", "ground_truth")}
        tiou = [float(t) for t in cfg["tiou_thresholds"]]
        for v, frames, feats, labels in self._features(method, test, k, ctx, "test videos"):
            probs = torch.softmax(feats @ w[0] + b[0], dim=1)
            dets = segments_from_scores(probs[:, :k].numpy(), v.fps / int(cfg["frame_stride"]),
                                        float(cfg["score_threshold"]), v.name, min_frames=int(cfg["min_frames"]))
            gts = [Detection(v.name, s.label, s.start, s.end, 1.0) for s in v.segments]
            detections += dets
            ground_truth += gts
            samples["id"].append(relative_id(v.path, root, v.name))
            samples["mAP@0.5"].append(map_at_tiou(gts, dets, [0.5])["mAP@0.5"] if gts else float(not dets))
            samples["frame_accuracy"].append(float((probs.argmax(1) == labels).float().mean()))
            samples["frames"].append(len(labels))
            samples["detections"].append([[d.label, d.start, d.end, d.score] for d in dets])
            samples["ground_truth"].append([[g.label, g.start, g.end] for g in gts])
        metrics = map_at_tiou(ground_truth, detections, tiou)
        metrics["frame_accuracy"] = float(np.average(samples["frame_accuracy"], weights=samples["frames"]))
        details = {"num_train": len(train), "num_test": len(test), "num_classes": k, "num_detections": len(detections)}
        return TaskOutput(metrics=metrics, details=details, samples=samples)

    @classmethod
    def aggregate(cls, samples: dict[str, list]) -> float:
        """mAP@0.5 of the rows, pooled over their videos as :func:`map_at_tiou` pools the split's."""
        gts = [Detection(str(i), int(c), a, b, 1.0) for i, rows in enumerate(samples["ground_truth"]) for c, a, b in rows]
        dets = [Detection(str(i), int(c), a, b, sc) for i, rows in enumerate(samples["detections"]) for c, a, b, sc in rows]
        return map_at_tiou(gts, dets, [0.5])["mAP@0.5"]

