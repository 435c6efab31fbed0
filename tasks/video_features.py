"""One embedding per video from a method: shared clip sampling, resizing and multi-clip averaging.

Retrieval and classification both need "the feature of this video": ``num_clips`` clips of
``num_frames`` frames ``stride`` apart, spread evenly over the video (mmaction2's test-mode
``SampleFrames`` through :func:`benchmark.data.sampling.clip_indices`), each resized on its short side
and centre-cropped (mmaction2's test pipeline ``Resize(-1, short_side)`` → ``CenterCrop(crop)``),
embedded with ``method.video_embedding`` and averaged over clips (multi-clip test-time averaging;
``num_clips: 1`` is the single centre clip). Frames are decoded once per video for all clips.
:class:`LabelledVideoTask` is the base of the tasks that read a labelled train → test split.
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from benchmark.context import RunContext
from benchmark.errors import UserError
from benchmark.data.sampling import clip_indices
from benchmark.data.types import LabelledVideo
from benchmark.data import frames
from benchmark.data.frames import LazyFrames, Preprocess
from benchmark.data.video import video_length
from benchmark.schemas import Pos, Strict
from tasks.base import Task, relative_id

SAMPLING_KEYS = ("num_frames", "stride", "num_clips", "short_side", "crop")


class ClipSampling(Strict):
    """The clip-sampling keys (:data:`SAMPLING_KEYS`) of every task that embeds whole videos."""

    num_frames: Pos
    stride: Pos
    num_clips: Pos
    short_side: Pos
    crop: Pos


class SplitClipSampling(ClipSampling):
    """Clip sampling on a data set with numbered splits (UCF101, HMDB51: 1, 2 or 3)."""

    split: Literal[1, 2, 3]


def lazy_clips(path: Any, cfg: dict[str, Any]) -> list[LazyFrames]:
    """The evaluation clips of one video, each ``(T, 3, crop, crop)`` in [0, 1], decoded (once for all
    clips) only when a clip's pixels are used: a feature-cache hit needs none."""
    n = video_length(path)
    if n < 1:
        raise UserError(f"video {path} has no frames: re-encode or remove it")
    idx = clip_indices(n, int(cfg["num_frames"]), int(cfg["stride"]), "uniform", int(cfg["num_clips"]))
    return frames.load_clips(path, idx, Preprocess(int(cfg["short_side"]), int(cfg["crop"])))


def load_clips(path: Any, cfg: dict[str, Any]) -> torch.Tensor:
    """The evaluation clips of one video as float frames ``(num_clips, T, 3, crop, crop)`` in [0, 1]."""
    return torch.stack([clip.materialize() for clip in lazy_clips(path, cfg)])


def video_embeddings(method: Any, videos: Sequence[LabelledVideo], cfg: dict[str, Any],
                     ctx: RunContext | None = None, desc: str = "videos") -> torch.Tensor:
    """``(N, C)`` embeddings of ``videos``: the mean of ``method.video_embedding`` over each video's clips.

    Args:
        method: a :class:`methods.base.Method`.
        videos: the videos, in order.
        cfg: a task config holding :data:`SAMPLING_KEYS`.
        ctx: for the progress flag.
        desc: progress-bar label.
    """
    missing = [k for k in SAMPLING_KEYS if k not in cfg]
    if missing:
        raise UserError(f"task config lacks the clip-sampling keys {', '.join(missing)}: add them to its YAML")
    show = bool(ctx.progress) if ctx is not None else False
    it = videos
    if show:
        from tqdm import tqdm

        it = tqdm(videos, desc=desc, leave=False)
    out = []
    with torch.inference_mode():
        for video in it:
            clips = lazy_clips(video.path, cfg)
            out.append(torch.stack([method.video_embedding(c).float().cpu() for c in clips]).mean(0))
    return torch.stack(out)


class LabelledVideoTask(Task):
    """Base of the tasks on a labelled train → test split of videos (classification, retrieval).

    ``reader`` names the data set's reader, a callable or a ``"module:function"`` string, called as
    ``reader(root)`` or, when the task config has a ``split`` key, ``reader(root, split)``; it returns
    ``(train, test, class names)``. So a task on a new data set is one file that sets it.
    """

    reader: ClassVar[Any]

    def load_split(self, ctx: RunContext) -> tuple[list[LabelledVideo], list[LabelledVideo], list[str]]:
        """``(train, evaluation videos, class names)`` read by ``reader`` from the data set's folder."""
        fn = type(self).reader  # through the class: a plain function stays unbound
        if isinstance(fn, str):
            module, _, attr = fn.partition(":")
            fn = getattr(importlib.import_module(module), attr)
        args = (int(self.config["split"]),) if "split" in self.config else ()
        train, test, classes = fn(ctx.dataset_path(self.meta.dataset), *args)
        if not train or not test:
            raise UserError(f"{self.meta.name}: the split has {len(train)} train and {len(test)} test videos; "
                            "both must be non-empty")
        return train, test, classes

    @staticmethod
    def sample_ids(videos: Sequence[LabelledVideo], root: Path) -> list[str]:
        """Stable ids of ``videos``: their paths relative to the data set folder (POSIX), else their names."""
        return [relative_id(v.path, root, v.name) for v in videos]
