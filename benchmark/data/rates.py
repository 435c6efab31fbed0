"""AdViSe's training data: playback-rate clips of unlabelled videos and their clip augmentation.

The released pipeline (github.com/JingwWu/advise-video-ssl), reproduced here so that the method file
holds only the model:

* ``datasets/sampling.py`` ``SpeedSampling.gen_labels``: each of ``clips_per_video`` clips draws a
  rate index uniformly from ``SSL.RANGE``; ``SpeedStampsGenerator`` turns it into frame stamps
  (:func:`benchmark.data.sampling.rate_clip`). The config's ``TASK: tmodeling`` would select
  ``TemporalModelingSampling``, which never returns its clips; ``SpeedSampling`` is the working path.
* ``datasets/__init__.py`` ``build_aug`` with ``AUG.TYPE: simple`` (:func:`release_augment`):
  ``Resize(w=320, h=256)`` — a squash, not a short-side resize — then ``RandomCrop(224)`` and
  ``RandomColorJitter(p=0.8, b=0.2, c=0.2, s=0.2, h=0.1)``, then ``AugsWarper``'s
  ``Normalize`` with ImageNet mean/std whatever the encoder. ``SpeedSampling.apply_aug`` re-seeds
  ``random`` before each frame, so one crop and one jitter serve a whole clip. The jitter applies
  PIL's Brightness, Contrast and Color enhancers in random order (torchvision's ``ColorJitter``
  with the same ranges and hue 0); its hue step adds a float in (-0.1, 0.1) to a uint8 HSV
  channel, which truncation turns into a shift of at most 1/255, so it is left out. No grayscale,
  no random-resized crop: ``AUG.GRAYSCALE`` and ``AUG.MIN_AREA`` are read only by other
  ``AUG.TYPE`` branches.
* ``augment: ours`` keeps this project's earlier choice (short side, random-resized crop over
  ``crop_area``, a real hue jitter, grayscale), as a named option.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.backbones.base import IMAGENET_STATS
from benchmark.data.sampling import rate_clip
from benchmark.data.video import centre_crop, read_video, to_tensor, video_length
from benchmark.errors import UserError

IMAGENET_MEAN, IMAGENET_STD = IMAGENET_STATS  # AugsWarper's transforms.Normalize (datasets/augmentation.py)
AUGMENTS = ("release", "ours")


def imagenet_input(frames: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Frames in [0, 1] mapped so that a backbone normalising by ``mean``/``std`` sees ImageNet-normalised input.

    The release normalises with ImageNet statistics for every encoder (CLIP included); an affine map
    in pixel space does the same through ``Backbone.encode`` (and so through the feature cache).
    """
    m_in, s_in = (torch.tensor(v, dtype=frames.dtype, device=frames.device).view(3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    m_bb, s_bb = (torch.tensor(v, dtype=frames.dtype, device=frames.device).view(3, 1, 1) for v in (mean, std))
    return (frames - m_in) / s_in * s_bb + m_bb


def resize_frames(frames: np.ndarray, cfg: dict[str, Any]) -> torch.Tensor:
    """uint8 ``(T,H,W,3)`` → float ``(T,3,H',W')``: squashed to ``resize`` = [w, h] (release) or short side ``short_side`` (ours)."""
    if cfg["augment"] == "release":
        w, h = (int(v) for v in cfg["resize"])
        return to_tensor(frames, (h, w))
    return to_tensor(frames, int(cfg["short_side"]))


def release_augment(clip: torch.Tensor, cfg: dict[str, Any], seed: int) -> torch.Tensor:
    """One crop and one colour jitter for a whole clip ``(T,3,H,W)``, as ``cfg['augment']`` says."""
    from torchvision.transforms import v2

    b, c, s, h = (float(v) for v in cfg["color_jitter"])
    crop = int(cfg["crop"])
    if cfg["augment"] == "release":
        ops = [v2.RandomCrop(crop), v2.RandomApply([v2.ColorJitter(b, c, s, 0.0)], p=float(cfg["color_prob"]))]
    else:
        ops = [v2.RandomResizedCrop(crop, scale=tuple(cfg["crop_area"]), antialias=True),
               v2.RandomApply([v2.ColorJitter(b, c, s, h)], p=float(cfg["color_prob"])),
               v2.RandomGrayscale(float(cfg["grayscale_prob"]))]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return v2.Compose(ops)(clip)  # v2 draws one set of parameters for the leading (time) dimension


class RateClips:
    """The rate-labelled training clips of a list of videos, as frames or as cached encoder tokens.

    Args:
        cfg: the method config (``rates``, ``jitter``, ``num_frames``, ``stride``,
            ``clips_per_video``, ``augment`` and its sizes, ``cache_tokens``).
        encode: frames ``(N,3,H,W)`` in [0, 1] → tokens ``(N,h,w,C)`` (the method's frozen path).
    """

    def __init__(self, cfg: dict[str, Any], encode):
        if cfg["augment"] not in AUGMENTS:
            raise UserError(f"advise: augment must be one of {', '.join(AUGMENTS)}, got {cfg['augment']!r}")
        if not cfg["rates"] or any(r <= 0 for r in cfg["rates"]):
            raise UserError(f"advise: rates must be a non-empty list of positive playback rates, got {cfg['rates']}")
        self.cfg, self.encode = cfg, encode
        self._tokens: dict[Path, torch.Tensor] = {}

    def _cached(self, path: Path) -> torch.Tensor:
        """All tokens of a video (resized, centre crop, no augmentation), computed once (``cache_tokens``)."""
        if path not in self._tokens:
            frames = centre_crop(resize_frames(read_video(path), self.cfg), int(self.cfg["crop"]))
            self._tokens[path] = self.encode(frames).half().cpu()
        return self._tokens[path]

    def clips(self, path: Path, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``clips_per_video`` rate clips of one video as tokens ``(K,T,h,w,C)`` and their rate labels."""
        cfg = self.cfg
        rates = cfg["rates"]
        labels = rng.integers(0, len(rates), size=int(cfg["clips_per_video"]))
        n = len(self._cached(path)) if cfg["cache_tokens"] else video_length(path)
        idx = np.stack([rate_clip(n, int(cfg["num_frames"]), int(cfg["stride"]), float(rates[k]), rng, float(cfg["jitter"]))
                        for k in labels])
        if cfg["cache_tokens"]:
            return self._cached(path)[torch.from_numpy(idx)].float(), torch.from_numpy(labels)
        uniq, inverse = np.unique(idx, return_inverse=True)
        frames = resize_frames(read_video(path, uniq), cfg)[torch.from_numpy(inverse.reshape(idx.shape))]
        clips = torch.cat([release_augment(clip, cfg, int(rng.integers(2**31))) for clip in frames])
        tokens = self.encode(clips)
        return tokens.reshape(len(labels), idx.shape[1], *tokens.shape[1:]), torch.from_numpy(labels)
