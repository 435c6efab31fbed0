"""What the three label-propagation tasks (DAVIS, VIP, JHMDB) share on the task side.

:class:`PropagationTask` resolves the chosen preset into the config before the runner hashes it (a
``null`` under ``propagation`` or ``input_size`` means "the preset's value"; the stored config holds
the value itself), :func:`video_features` encodes a whole video at the preset's resolution, and
:func:`dense_output` writes the per-sample tables and collects the result.

Frames are resized as the reference loaders' ``cv2.resize`` does (bilinear, no antialiasing) and
predictions upsampled through the encoder's input frame as T-CORE and DINO do (``frame_resize`` and
``upsample`` in :class:`~tasks.presets.PropagationConfig`). Both matter beyond 0.001 J&F: on the toy
DAVIS (small, seed 0; frozen efficientnet_lite0; ``input_size: [fixed, H, W]`` overridden) antialiased
vs cv2 resizing moves J&F by 0.0028 when frames shrink to 96×160 (0 when they grow), and direct vs
through-the-frame upsampling by 0.0019 at 256×448.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from benchmark.data.frames import Preprocess, Video
from benchmark.schemas import Strict
from tasks.base import Task, TaskOutput
from tasks.presets import PresetName, PropagationConfig, Rule, input_size, overrides_model, resolved_config

#: the ``propagation`` keys every dense task's YAML lists
ENGINE_KEYS = "topk temperature radius radius_metric n_context long_memory mask_long_memory repeat_first frame_resize tile"
SegmentationPropagation = overrides_model("SegmentationPropagation", f"{ENGINE_KEYS} label_downsample norm_mask upsample index_resize")


class DenseConfig(Strict):
    """Keys every propagation task's YAML holds; ``null`` under ``propagation`` and in ``input_size``
    means the preset's value, filled in by :meth:`PropagationTask.resolve_config` after validation."""

    preset: PresetName
    input_size: Rule
    save_predictions: bool


class SegmentationConfig(DenseConfig):
    """What DAVIS and VIP share: a segmentation map propagated (labels downsampled, masks upsampled)."""

    propagation: SegmentationPropagation


class PropagationTask(Task):
    """Base of the label-propagation tasks: ``meta.dataset`` names the :data:`~tasks.presets.PRESETS` column."""

    @classmethod
    def resolve_config(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        return resolved_config(cfg, cls.meta.dataset)


def video_features(method: Any, frames: np.ndarray | Video, rule: list, resize: str = "cv2"
                   ) -> tuple[torch.Tensor, tuple[int, int]]:
    """Features ``(T, h, w, C)`` of ``uint8 (T, H, W, 3)`` frames resized by a resolution rule, and
    the encoder's input size.

    The method encodes the whole clip once (``frame_features`` batches it); sizes are floored to the
    backbone's stride so that the grid covers the entire resized frame. ``resize`` is ``cv2``
    (bilinear, half-pixel centres, no antialiasing: ``cv2.resize``'s ``INTER_LINEAR``, which the
    reference loaders call) or ``antialias``; it is part of the frames' source, so the feature cache
    keys the two apart. A :class:`~benchmark.data.frames.Video` is decoded on a cache miss only.
    """
    stride = int(getattr(getattr(method, "backbone", None), "stride", 1) or 1)
    size = input_size(rule, frames.shape[1], frames.shape[2], stride)
    pre = Preprocess(size, antialias=resize == "antialias")
    x = frames.tensor(pre) if isinstance(frames, Video) else pre(frames)
    feats = method.frame_features(x)
    if feats.ndim != 4 or feats.shape[0] != len(frames):
        raise ValueError(f"frame_features must return (T, h, w, C) for {len(frames)} frames, got {tuple(feats.shape)}")
    return feats, size


def dense_output(config: dict[str, Any], engine: PropagationConfig, rule: list, work_dir: Any,
                 metrics: dict[str, float], tables: dict[str, tuple[Any, str]], pred_dir: Any,
                 samples: dict[str, list], **details: Any) -> TaskOutput:
    """The :class:`~tasks.base.TaskOutput` of a dense task: its tables written as CSV artifacts in
    ``work_dir``, saved predictions, per-sample columns, and the preset, engine constants and
    resolution in ``details``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for key, (table, name) in tables.items():
        table.to_csv(work_dir / name, index=False)
        artifacts[key] = str(work_dir / name)
    if pred_dir is not None:
        artifacts["predictions"] = str(pred_dir)
    info = {"preset": config.get("preset"), "propagation": dataclasses.asdict(engine), "input_size": rule, **details}
    return TaskOutput(metrics=metrics, artifacts=artifacts, details=info, samples=samples)
