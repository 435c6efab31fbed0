"""VIP (Video Instance-level Parsing) human-part propagation, mIoU over the 20 part classes.

The first frame's part labels are propagated through the method's features (:mod:`tasks.propagation`,
preset ``cosettle``: T-CORE's VIP constants, top-k 10, long side 880) and the sparsely annotated
frames are scored with one confusion matrix over the whole split (:mod:`tasks.metrics.vip`, as
``eval_vip.py``).

One deliberate difference from CRW/T-CORE's scripts, a named option: they also write (and so score)
the reference frame, whose "prediction" is its given labels; here the reference frame is left out
unless ``score_reference_frame`` is true, so the score measures propagation only.

Per-sample scores are per video: its own ``mIoU`` (confusion of its frames alone), ``frames``, and
the per-class true positives ``tp`` and unions ``union`` (20 counts each). The split's mIoU pools the
confusion over videos, so it is not the mean of per-video mIoU; :meth:`VIP.aggregate` recomputes it
exactly from ``tp`` and ``union`` of any resample of videos.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from tqdm import tqdm

from benchmark.context import RunContext
from benchmark.errors import UserError
from tasks.base import TaskMeta, TaskOutput
from benchmark.data.davis import read_mask, write_mask
from benchmark.data.frames import Video
from benchmark.data.vip import (
    IGNORE_LABEL,
    VIP_CLASSES,
    VIP_NUM_CLASSES,
    load_vip,
    read_parts,
)
from tasks.davis import prediction_file
from tasks.dense import PropagationTask, SegmentationConfig, dense_output, video_features
from tasks.metrics.vip import confusion, per_class_iou, scores
from tasks.presets import PropagationConfig, resolve
from tasks.propagation import grid_to_labels, labels_to_grid, propagate
from benchmark.registry import TASKS


def propagate_parts(method: Any, frames: np.ndarray | Video, first: np.ndarray, wanted: list[int], cfg: PropagationConfig,
                    rule: list) -> dict[int, np.ndarray]:
    """Part classes ``uint8 (H, W)`` for the frames in ``wanted``, propagated from frame 0's labels.

    Ignored pixels (255) of the first frame carry no label: their one-hot row is empty.
    """
    feats, size = video_features(method, frames, rule, cfg.frame_resize)
    frame = size if cfg.upsample == "frame" else None
    device = feats.device
    ids = torch.as_tensor([c for c in np.unique(first).tolist() if c != IGNORE_LABEL], device=device)
    start = labels_to_grid(torch.as_tensor(first.astype(np.int64), device=device), ids, tuple(feats.shape[1:3]),
                           cfg.label_downsample, cfg.index_resize)
    soft = propagate(feats, start, cfg)
    rule = cfg.index_resize
    return {t: (first.copy() if t == 0 else ids[grid_to_labels(soft[t], first.shape, cfg.norm_mask, frame, rule)].cpu().numpy().astype(np.uint8))
            for t in wanted}


def score_videos(items: Iterable[tuple[str, list[tuple[np.ndarray, np.ndarray]]]]) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Global scores (pooled confusion), a per-video table and a per-class table.

    Args:
        items: ``(video name, [(ground truth, prediction), ...])`` for the scored frames.
    """
    total = np.zeros((VIP_NUM_CLASSES, VIP_NUM_CLASSES), np.int64)
    rows = []
    for name, pairs in items:
        hist = np.zeros_like(total)
        for gt, pred in pairs:
            if gt.shape != pred.shape:
                raise UserError(f"VIP video {name}: prediction shape {pred.shape} != label shape {gt.shape}; predict at label resolution")
            try:
                hist += confusion(gt, pred, VIP_NUM_CLASSES)
            except ValueError as e:
                raise UserError(f"VIP video {name}: {e}; predictions must be part ids 0..19") from None
        total += hist
        tp = np.diag(hist)
        rows.append({"Video": name, "frames": len(pairs), **scores(hist),
                     "tp": tp.tolist(), "union": (hist.sum(0) + hist.sum(1) - tp).tolist()})
    if total.sum() == 0:
        raise UserError("VIP: no labelled pixel was scored; every video needs an annotated frame after the first")
    per_class = pd.DataFrame({"class": VIP_CLASSES, "IoU": per_class_iou(total), "gt_pixels": total.sum(1)})
    return scores(total), pd.DataFrame(rows), per_class


def per_video(table: pd.DataFrame) -> dict[str, list]:
    """Per-sample columns of the per-video table (see the module docstring)."""
    return {"id": table["Video"].tolist(), "mIoU": table["mIoU"].tolist(), "frames": table["frames"].tolist(),
            "tp": table["tp"].tolist(), "union": table["union"].tolist()}


@TASKS.register("vip", "VIP part propagation, mIoU over 20 part classes")
class VIP(PropagationTask):
    """VIP part propagation, mIoU over 20 part classes."""

    meta = TaskMeta(
        name="vip",
        dataset="vip",
        main_metric="mIoU",
        higher_is_better=True,
        protocol="VIP_Fine val, label propagation (T-CORE/CRW/DINO presets), eval_vip.py confusion mIoU",
        sample_unit="video",
        sample_metric="mIoU",
    )
    version = 3  # 2: per-video samples; presets resolved into the stored config; 3: index_resize (dino: PIL nearest)
    score_split = "val"

    class Config(SegmentationConfig):
        """configs/tasks/vip.yaml."""

        split: Annotated[str, Field(min_length=1)]  # lists/<split>_videos.txt
        score_reference_frame: bool

    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        cfg, rule = resolve(self.config, "vip")
        split = self.config.get("split", "val")
        with_ref = bool(self.config.get("score_reference_frame", False))
        videos = load_vip(ctx.dataset_path("vip"), split)
        pred_dir = ctx.work_dir / "vip" if self.config.get("save_predictions") else None

        def items() -> Iterable[tuple[str, list[tuple[np.ndarray, np.ndarray]]]]:
            for video in tqdm(videos, desc="vip", disable=not ctx.progress, leave=False):
                scored = [t for t in sorted(video.labels) if t > 0 or with_ref]
                files = video.frames[: max(scored, default=0) + 1]
                frames = Video(files[0].parent, files)  # decoded on a feature-cache miss only
                preds = propagate_parts(method, frames, read_parts(video.labels[0]), scored, cfg, rule)
                if pred_dir is not None:
                    for t, mask in preds.items():
                        write_mask(pred_dir / video.name / f"{video.frames[t].stem}.png", mask)
                yield video.name, [(read_parts(video.labels[t]), preds[t]) for t in scored]

        metrics, table, per_class = score_videos(items())
        return dense_output(self.config, cfg, rule, ctx.work_dir, metrics,
                            {"per_video": (table.drop(columns=["tp", "union"]), f"vip_per-video_results-{split}.csv"),
                             "per_class": (per_class, f"vip_per-class_iou-{split}.csv")}, pred_dir,
                            per_video(table), split=split, score_reference_frame=with_ref, videos=len(videos),
                            scored_frames=int(table["frames"].sum()))

    @classmethod
    def aggregate(cls, samples: dict[str, list]) -> float:
        """Pooled mIoU of the rows: per class, summed true positives over summed unions (``eval_vip.py``)."""
        tp, union = np.sum(samples["tp"], axis=0), np.sum(samples["union"], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.nanmean(tp / union))

    @classmethod
    def score_folder(cls, data_root: Path, predictions: Path) -> tuple[dict[str, float], pd.DataFrame]:
        """``<predictions>/<video>/<frame>.png`` part ids for the annotated frames after the first."""

        def items() -> Iterable[tuple[str, list[tuple[np.ndarray, np.ndarray]]]]:
            for video in load_vip(data_root, cls.score_split):
                scored = [t for t in sorted(video.labels) if t > 0]
                yield video.name, [
                    (read_parts(video.labels[t]),
                     read_mask(prediction_file(predictions / video.name / f"{video.frames[t].stem}.png", "VIP"),
                               require_palette=False))
                    for t in scored
                ]

        metrics, table, _ = score_videos(items())
        return metrics, table.drop(columns=["tp", "union"])
