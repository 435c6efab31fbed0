"""Co-Settle's training samples: two frames of one unlabelled video with one shared crop and flip.

The authors' pipeline (Liu et al., CVPR 2026; github.com/yafeng19/Co-Settle @ 764436e):
frame indices from ``sample_two_frames_tuple`` (``util/video/video_utils.py``;
:func:`benchmark.data.sampling.frame_pair_with_previous`), of which ``forward_adapter`` reads only
the "current" frames t and t + gap; both frames squashed to ``pre_resize``² (``TRANSFORM =
Resize((224, 224))``), then one BYOL-style RandomResizedCrop shared by the pair
(``util/video_datasets.py: DoubleTupleRandomResizedCrop``, ``util/video/image_utils.py: RRC``:
scale and ratio from the config, bicubic, a single draw) resized to ``input_size``, and one
horizontal flip with probability ``hflip_p``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch.utils.data import Dataset

from benchmark.data.sampling import frame_pair_with_previous
from benchmark.data.video import read_video, to_tensor, video_length


def byol_crop_params(height: int, width: int, scale: Sequence[float], ratio: Sequence[float],
                     rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``RRC.get_params`` (``util/video/image_utils.py``, after BYOL): one draw, no retry loop.

    Returns ``(top, left, h, w)``.
    """
    area = height * width * rng.uniform(scale[0], scale[1])
    aspect = float(np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]))))
    w = min(round(float(np.sqrt(area * aspect))), width)
    h = min(round(float(np.sqrt(area / aspect))), height)
    return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w


class FramePairs(Dataset):
    """Frames ``(t, t + gap)`` of one video with a shared crop and flip, ``(2, 3, S, S)`` in [0, 1].

    Args:
        videos: video files or frame folders.
        cfg: ``clip_gap``, ``pre_resize``, ``crop_scale``, ``crop_ratio``, ``input_size``, ``hflip_p``.
        seed: the run's seed.

    Indexed by ``(epoch, video_index)``; every draw comes from a generator seeded by
    ``(seed, epoch, video_index)``, so any worker count and any resume point give the same sample.
    """

    def __init__(self, videos: Sequence[Path], cfg: dict[str, Any], seed: int):
        self.videos, self.cfg, self.seed = list(videos), cfg, seed

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        epoch, idx = key
        rng = np.random.default_rng([self.seed, epoch, idx])
        path = self.videos[idx]
        _, t, _, t_gap = frame_pair_with_previous(video_length(path), float(self.cfg["clip_gap"]), rng)
        pre = int(self.cfg["pre_resize"])
        x = to_tensor(read_video(path, [t, t_gap]), (pre, pre))
        top, left, h, w = byol_crop_params(pre, pre, self.cfg["crop_scale"], self.cfg["crop_ratio"], rng)
        size = [int(self.cfg["input_size"])] * 2
        x = TF.resized_crop(x, top, left, h, w, size, interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
        return TF.horizontal_flip(x) if rng.random() < float(self.cfg["hflip_p"]) else x
