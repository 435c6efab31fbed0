"""VIP (Video Instance-level Parsing) human-part propagation, mIoU over the 20 part classes.

The first frame's part labels are propagated through the method's features (:mod:`tasks.propagation`,
preset ``cosettle``: T-CORE's VIP constants, top-k 10, long side 880) and the sparsely annotated
frames are scored with one confusion matrix over the whole split (:mod:`tasks.metrics.vip`, as
``eval_vip.py``).

One deliberate difference from CRW/T-CORE's scripts, a named option: they also write (and so score)
the reference frame, whose "prediction" is its given labels; here the reference frame is left out
unless ``score_reference_frame`` is true, so the score measures propagation only.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from benchmark.context import RunContext
from benchmark.errors import UserError
from tasks.base import Task, TaskMeta, TaskOutput
from benchmark.data.davis import read_frame, write_mask
from benchmark.data.vip import (
    IGNORE_LABEL,
    VIP_CLASSES,
    VIP_NUM_CLASSES,
    load_vip,
    read_parts,
)
from tasks.metrics.vip import confusion, per_class_iou, scores
from tasks.propagation import (
    PropagationConfig,
    dense_output,
    grid_to_labels,
    labels_to_grid,
    propagate,
    resolve,
    video_features,
)


def propagate_parts(method: Any, frames: np.ndarray, first: np.ndarray, wanted: list[int], cfg: PropagationConfig,
                    rule: list) -> dict[int, np.ndarray]:
    """Part classes ``uint8 (H, W)`` for the frames in ``wanted``, propagated from frame 0's labels.

    Ignored pixels (255) of the first frame carry no label: their one-hot row is empty.
    """
    feats = video_features(method, frames, rule)
    device = feats.device
    ids = torch.as_tensor([c for c in np.unique(first).tolist() if c != IGNORE_LABEL], device=device)
    start = labels_to_grid(torch.as_tensor(first.astype(np.int64), device=device), ids, tuple(feats.shape[1:3]),
                           cfg.label_downsample)
    soft = propagate(feats, start, cfg)
    return {t: (first.copy() if t == 0 else ids[grid_to_labels(soft[t], first.shape, cfg.norm_mask)].cpu().numpy().astype(np.uint8))
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
        rows.append({"Video": name, "frames": len(pairs), **scores(hist)})
    if total.sum() == 0:
        raise UserError("VIP: no labelled pixel was scored; every video needs an annotated frame after the first")
    per_class = pd.DataFrame({"class": VIP_CLASSES, "IoU": per_class_iou(total), "gt_pixels": total.sum(1)})
    return scores(total), pd.DataFrame(rows), per_class


class VIP(Task):
    """VIP part propagation, mIoU over 20 part classes."""

    meta = TaskMeta(
        name="vip",
        dataset="vip",
        main_metric="mIoU",
        higher_is_better=True,
        protocol="VIP_Fine val, label propagation (T-CORE/CRW/DINO presets), eval_vip.py confusion mIoU",
    )

    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        cfg, rule = resolve(self.config, "vip")
        split = self.config.get("split", "val")
        with_ref = bool(self.config.get("score_reference_frame", False))
        videos = load_vip(ctx.dataset_path("vip"), split)
        pred_dir = ctx.work_dir / "vip" if self.config.get("save_predictions") else None

        def items() -> Iterable[tuple[str, list[tuple[np.ndarray, np.ndarray]]]]:
            for video in tqdm(videos, desc="vip", disable=not ctx.progress, leave=False):
                scored = [t for t in sorted(video.labels) if t > 0 or with_ref]
                frames = np.stack([read_frame(p) for p in video.frames[: max(scored, default=0) + 1]])
                preds = propagate_parts(method, frames, read_parts(video.labels[0]), scored, cfg, rule)
                if pred_dir is not None:
                    for t, mask in preds.items():
                        write_mask(pred_dir / video.name / f"{video.frames[t].stem}.png", mask)
                yield video.name, [(read_parts(video.labels[t]), preds[t]) for t in scored]

        metrics, per_video, per_class = score_videos(items())
        return dense_output(self.config, cfg, rule, ctx.work_dir, metrics,
                            {"per_video": (per_video, f"vip_per-video_results-{split}.csv"),
                             "per_class": (per_class, f"vip_per-class_iou-{split}.csv")}, pred_dir,
                            split=split, score_reference_frame=with_ref, videos=len(videos),
                            scored_frames=int(per_video["frames"].sum()))
