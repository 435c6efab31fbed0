"""JHMDB pose propagation: the 15 joints of frame 0 carried through the clip, PCK@0.1 / PCK@0.2.

As CRW (``code/data/jhmdb.py``, ``test.py``) and T-CORE do: each joint becomes a Gaussian heatmap
at feature resolution (sigma 0.5 cell, plus a background channel; by default CRW's integer-centred
4×4 patch at CRW's ``x × grid / image`` position, ``pose_heatmap: exact`` / ``pose_coords: centre``
are our sub-cell options), the heatmaps are propagated like
segmentation labels (:mod:`tasks.propagation`; preset ``cosettle``: 320×320 frames, a 20×20 grid
at stride 16), and each joint is decoded as the value-weighted mean of its strongest cells. PCK is
computed by :mod:`tasks.metrics.pck` (CRW's ``eval_pck.py`` with its known bugs fixed and listed
there). ``save_predictions`` writes ``<action>/<video>.npy`` arrays ``(T, 15, 2)`` of 0-based
(x, y) pixels (NaN = lost), the format ``bench score jhmdb`` reads (:meth:`JHMDB.score_folder`).

Per-sample scores are per video (id ``<action>/<video>``): its ``PCK@0.1``, ``PCK@0.2`` and scored
``frames`` (videos without a scorable frame are left out: they carry no weight). PCK pools joints
over all frames of the split, so it is the ``frames``-weighted mean of the per-video PCK
(:meth:`JHMDB.aggregate`), exactly for ``pck: fixed`` (under ``crw`` only when no joint is lost).
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from benchmark.context import RunContext
from benchmark.errors import UserError
from tasks.base import TaskMeta, TaskOutput
from benchmark.data.frames import Video
from benchmark.data.jhmdb import load_jhmdb
from tasks.metrics.pck import (
    THRESHOLDS,
    grid_to_pixels,
    normalised_distances,
    pck,
    pixels_to_grid,
)
from tasks.davis import prediction_file
from tasks.dense import ENGINE_KEYS, DenseConfig, PropagationTask, dense_output, video_features
from tasks.presets import PropagationConfig, overrides_model, resolve
from tasks.propagation import decode_keypoints, keypoint_heatmaps, propagate
from benchmark.registry import TASKS


def propagate_pose(method: Any, frames: np.ndarray | Video, first: np.ndarray, cfg: PropagationConfig, rule: list) -> np.ndarray:
    """Keypoints ``(T, 15, 2)`` in pixels of every frame, propagated from frame 0's ``(15, 2)`` pose."""
    feats, _ = video_features(method, frames, rule, cfg.frame_resize)
    image, grid = frames.shape[1:3], tuple(feats.shape[1:3])
    start = keypoint_heatmaps(torch.as_tensor(pixels_to_grid(first, image, grid, cfg.pose_coords)), grid, cfg.pose_sigma,
                              cfg.pose_heatmap)
    soft = propagate(feats, start.to(feats.device), cfg)
    out = np.empty((len(frames), *first.shape), np.float64)
    out[0] = first
    for t in range(1, len(frames)):
        out[t] = grid_to_pixels(decode_keypoints(soft[t], cfg.pose_topk).cpu().numpy(), image, grid, cfg.pose_coords)
    return out


def score_videos(items: Iterable[tuple[str, np.ndarray, np.ndarray]], variant: str = "fixed"
                 ) -> tuple[dict[str, float], pd.DataFrame, int]:
    """Pooled PCK of ``(name, ground truth, prediction)`` pose tracks, a per-video table, and the
    number of frames left out for a zero-size pose box (``variant``: see :func:`normalised_distances`)."""
    pooled, rows, skipped = [], [], 0
    for name, gt, pred in items:
        try:
            d, degenerate = normalised_distances(pred, gt, variant)
        except ValueError as e:
            raise UserError(f"JHMDB video {name}: {e}; predict (T, 15, 2) pixels for every frame") from None
        skipped += degenerate
        pooled.append(d)
        rows.append({"Video": name, "frames": len(d), **(pck(d) if len(d) else {f"PCK@{a:g}": float("nan") for a in THRESHOLDS})})
    distances = np.concatenate(pooled) if pooled else np.zeros((0, 15))
    try:
        metrics = pck(distances)
    except ValueError as e:
        raise UserError(f"JHMDB: {e}") from None
    return metrics, pd.DataFrame(rows), skipped


PosePropagation = overrides_model("PosePropagation", f"{ENGINE_KEYS} pose_topk pose_sigma pose_heatmap pose_coords")


@TASKS.register("jhmdb", "JHMDB pose propagation, PCK@0.1 / PCK@0.2")
class JHMDB(PropagationTask):
    """JHMDB pose propagation, PCK@0.1 / PCK@0.2."""

    meta = TaskMeta(
        name="jhmdb",
        dataset="jhmdb",
        main_metric="PCK@0.1",
        higher_is_better=True,
        protocol="JHMDB split-1 test, keypoint propagation (T-CORE/CRW presets), CRW eval_pck.py PCK (bugs fixed)",
        sample_unit="video",
        sample_metric="PCK@0.1",
    )
    version = 2  # 2: per-video samples (ids <action>/<video>); CRW heatmap and coordinates by default
    score_split = "split1"

    class Config(DenseConfig):
        """configs/tasks/jhmdb.yaml."""

        propagation: PosePropagation
        pck: Literal["fixed", "crw"]  # tasks/metrics/pck.py
        split: Literal[1, 2, 3]  # splits/<class>_test_split<k>.txt
        subset: Literal["test", "train"]  # lines marked 2 | 1

    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        cfg, rule = resolve(self.config, "jhmdb")
        split = int(self.config.get("split", 1))
        videos = load_jhmdb(ctx.dataset_path("jhmdb"), split, self.config.get("subset", "test"))
        pred_dir = ctx.work_dir / "jhmdb" if self.config.get("save_predictions") else None

        def items() -> Iterable[tuple[str, np.ndarray, np.ndarray]]:
            for video in tqdm(videos, desc="jhmdb", disable=not ctx.progress, leave=False):
                frames = Video(video.frames[0].parent, video.frames)  # decoded on a feature-cache miss only
                pred = propagate_pose(method, frames, video.keypoints[0], cfg, rule)
                if pred_dir is not None:
                    save_pose(pred_dir / video.action / f"{video.name}.npy", pred)
                yield f"{video.action}/{video.name}", video.keypoints, pred

        variant = self.config["pck"]
        metrics, table, degenerate = score_videos(items(), variant)
        scored = table[table["frames"] > 0]  # a video without a scorable frame weighs nothing in PCK
        samples = {"id": scored["Video"].tolist(), **{k: scored[k].tolist() for k in ("PCK@0.1", "PCK@0.2", "frames")}}
        return dense_output(self.config, cfg, rule, ctx.work_dir, metrics,
                            {"per_video": (table, f"jhmdb_per-video_results-split{split}.csv")}, pred_dir,
                            samples, split=split, pck=variant, videos=len(videos), degenerate_frames=degenerate)

    @classmethod
    def aggregate(cls, samples: dict[str, list]) -> float:
        """Pooled PCK@0.1 of the rows: per-video PCK weighted by scored frames."""
        return float(np.average(samples["PCK@0.1"], weights=samples["frames"]))

    @classmethod
    def score_folder(cls, data_root: Path, predictions: Path) -> tuple[dict[str, float], pd.DataFrame]:
        """``<predictions>/<action>/<video>.npy`` arrays ``(T, 15, 2)`` of 0-based (x, y) pixels for split-1 test."""

        def items() -> Iterable[tuple[str, np.ndarray, np.ndarray]]:
            for video in load_jhmdb(data_root, 1, "test"):
                path = prediction_file(predictions / video.action / f"{video.name}.npy", "JHMDB")
                try:
                    pred = np.load(path, allow_pickle=False)
                except (ValueError, OSError) as e:
                    raise UserError(f"cannot read prediction {path} ({e}): save a float (T, 15, 2) array with numpy.save") from None
                yield f"{video.action}/{video.name}", video.keypoints, pred

        metrics, table, _ = score_videos(items())
        return metrics, table


def save_pose(path: Path, pose: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(pose, np.float64))
