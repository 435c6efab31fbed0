"""The backbone contract: frames in, a grid of patch tokens out.

Every encoder, ViT or CNN, is wrapped so that ``encode(frames)`` takes float frames in ``[0, 1]`` of
shape ``(B, 3, H, W)`` at any resolution and returns tokens ``(B, h, w, C)`` with ``h = H // stride``.
Normalisation happens inside, so a method or task never needs to know the encoder's statistics.
"""
from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from benchmark.errors import UserError

Precision = Literal["fp32", "bf16"]
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
InputNorm = Literal["own", "imagenet"]
INPUT_NORMS = ("own", "imagenet")
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # torchvision's ImageNet mean and std


@dataclass(frozen=True)
class BackboneMeta:
    """What a backbone is, for listings, results and cache keys.

    Attributes:
        name: registry name (``mae``).
        arch: the timm architecture it is built on (``vit_base_patch16_224``).
        family: ``vit`` or ``cnn`` (methods that touch positional embeddings need ``vit``).
        paper: where the weights come from.
        weights_file: the authors' file name, used in the "where to put it" message.
        weights_url: where that file is published.
        hub_tag: the timm pretrained tag (``vit_base_patch16_224.mae``), or "" when timm has none.
        random_init: True only for test backbones that never load weights.
        weights_sha256: the published sha256 of ``weights_file``, checked by ``bench weights fetch|verify``;
            "" where the authors publish none (the first download's digest is then recorded and trusted).
    """

    name: str
    arch: str
    family: str
    paper: str = ""
    weights_file: str = ""
    weights_url: str = ""
    hub_tag: str = ""
    random_init: bool = False
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    weights_sha256: str = ""
    notes: str = field(default="", compare=False)


class Backbone(nn.Module, abc.ABC):
    """A frozen image encoder exposing dense patch tokens.

    Subclasses implement :meth:`tokens` on normalised input; :meth:`encode` adds normalisation.

    Attributes:
        name: registry name, set by ``BACKBONES.register``.
        meta: static description.
        stride: pixels per token along each side.
        dim: channels per token.
        weights_id: identity of the loaded weights (sha256 prefix of the file, hub tag, or
            ``random-init``), written into every result and cache key.
        amp_dtype: autocast dtype of a frozen encoder on CUDA, set from the ``precision`` option
            (:meth:`set_precision`); None keeps float32, as T-CORE, CRW and DINO extract evaluation features.
        option_defaults: per-variant defaults of options that the family's ``__init__`` declares (e.g. a
            ViT variant whose authors interpolate positions DINO's way), read by
            :func:`benchmark.config.defaults`, so a variant stays one class.
    """

    name: ClassVar[str] = ""
    meta: BackboneMeta
    stride: int
    dim: int
    weights_id: str
    amp_dtype: torch.dtype | None = None  # CUDA autocast of frozen encoders; None = float32
    input_norm: str = "own"  # the statistics normalise applies (set_input_norm)
    num_prefix_tokens: int = 0  # tokens before the patch grid in :meth:`sequence` (a ViT's CLS)
    option_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        super().__init__()

    def set_precision(self, precision: str) -> None:
        """The ``precision`` option: ``fp32`` (default, the reference codes' evaluation features) or ``bf16``
        (faster on GPU; bf16 keeps float32's exponent range, so ViT activations cannot overflow as in fp16).
        It is part of the result's config, so the two never share a record."""
        if precision not in PRECISIONS:
            raise UserError(f"backbone {self.name}: precision {precision!r} is unknown: use one of {', '.join(PRECISIONS)}")
        self.amp_dtype = PRECISIONS[precision]

    def set_input_norm(self, input_norm: str) -> None:
        """The ``input_norm`` option: ``own`` (default: the statistics the encoder was trained with) or
        ``imagenet`` (ImageNet mean/std for every encoder, as the reference codes feed them: Co-Settle
        ``util/video_datasets.py``, its ``cal_metric.py``, T-CORE ``src/data/vos.py``; differs from ``own``
        for CLIP, BLIP, CLIP-L/14 and EfficientNet-Lite0 only). Part of the result's config and the cache key."""
        if input_norm not in INPUT_NORMS:
            raise UserError(f"backbone {self.name}: input_norm {input_norm!r} is unknown: use one of {', '.join(INPUT_NORMS)}")
        self.input_norm = input_norm

    @property
    def input_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) that :meth:`normalise` applies."""
        return IMAGENET_STATS if self.input_norm == "imagenet" else (self.meta.mean, self.meta.std)

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        mean, std = (torch.tensor(v, device=frames.device, dtype=frames.dtype).view(1, 3, 1, 1) for v in self.input_stats)
        return (frames - mean) / std

    @abc.abstractmethod
    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised frames ``(B,3,H,W)`` (H, W multiples of the stride) → ``(B,h,w,C)``."""

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised frames → ``(B, num_prefix_tokens + h·w, C)``: the prefix tokens a ViT adds (CLS,
        registers) first, then the patch grid row by row; a CNN has none, so its flattened grid."""
        return self.tokens(x).flatten(1, 2)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``(B,3,H,W)`` in ``[0,1]`` → tokens ``(B, H//stride, W//stride, C)``.

        H and W are cropped down to multiples of the stride first, so any resolution works. On CUDA a
        frozen encoder (no parameter requiring grad) runs under ``amp_dtype`` autocast and returns
        float32 tokens, so callers see the same dtype on every device; a trained encoder keeps its
        caller's precision.
        """
        return self._encoded(self.tokens, frames)

    def encode_sequence(self, frames: torch.Tensor) -> torch.Tensor:
        """:meth:`encode` with the prefix tokens kept: :meth:`sequence` of the normalised frames."""
        return self._encoded(self.sequence, frames)

    def _encoded(self, forward: Callable[[torch.Tensor], torch.Tensor], frames: torch.Tensor) -> torch.Tensor:
        h = frames.shape[-2] // self.stride * self.stride
        w = frames.shape[-1] // self.stride * self.stride
        frames = frames[..., :h, :w]
        amp = self.amp_dtype is not None and frames.is_cuda and not any(p.requires_grad for p in self.parameters())
        # no autocast context at all unless amp: an ``enabled=False`` one would switch off the caller's
        with torch.autocast("cuda", dtype=self.amp_dtype) if amp else contextlib.nullcontext():
            tokens = forward(self.normalise(frames))
        return tokens.float() if amp else tokens

    @property
    def label(self) -> str:
        """Name as shown in tables: random-init backbones say so everywhere."""
        return f"{self.meta.name} (RANDOM INIT)" if self.meta.random_init else self.meta.name
