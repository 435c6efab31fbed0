"""One embedding per video from a method: shared clip sampling, resizing and multi-clip averaging.

Retrieval and classification both need "the feature of this video": ``num_clips`` clips of
``num_frames`` frames ``stride`` apart, spread evenly over the video (mmaction2's test-mode
``SampleFrames`` through :func:`benchmark.data.sampling.clip_indices`), each resized on its short side
and centre-cropped (mmaction2's test pipeline ``Resize(-1, short_side)`` → ``CenterCrop(crop)``),
embedded with ``method.video_embedding`` and averaged over clips (multi-clip test-time averaging;
``num_clips: 1`` is the single centre clip). Frames are decoded once per video for all clips.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from benchmark.context import RunContext
from benchmark.errors import UserError
from benchmark.data.sampling import clip_indices
from benchmark.data.types import LabelledVideo
from benchmark.data import frames
from benchmark.data.frames import LazyFrames, Preprocess
from benchmark.data.video import video_length

SAMPLING_KEYS = ("num_frames", "stride", "num_clips", "short_side", "crop")




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


def load_labelled_split(dataset: str, ctx: RunContext, config: dict[str, Any]
                        ) -> tuple[list[LabelledVideo], list[LabelledVideo], list[str]]:
    """``(train, evaluation videos, class names)`` of a labelled video data set, read by its own reader.

    UCF101 and HMDB51 use the split in ``config["split"]``; SSv2 has one train → validation split.
    """
    root = ctx.dataset_path(dataset)
    if dataset == "ucf101":
        from benchmark.data.ucf101 import load_ucf101

        return load_ucf101(root, int(config["split"]))
    if dataset == "hmdb51":
        from benchmark.data.hmdb51 import load_hmdb51

        return load_hmdb51(root, int(config["split"]))
    if dataset == "ssv2":
        from benchmark.data.ssv2 import load_ssv2

        return load_ssv2(root)
    raise UserError(f"no labelled-video reader for data set {dataset!r}: use ucf101, hmdb51 or ssv2")

