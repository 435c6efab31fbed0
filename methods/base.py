"""The method contract: a way of turning a frozen image backbone into video features.

A method is built on a backbone with its resolved config. ``fit`` trains whatever the method trains
(nothing for ``frozen``) and returns a training record; ``frame_features`` gives per-frame token grids
for dense tasks and ``video_embedding`` one vector per clip for video-level tasks. A task never
knows which method produced the features.

Adding a method: subclass :class:`Method`, decorate it with ``@METHODS.register("name")`` in a file
anywhere, and run it with ``bench run --plugin that_file.py --method name``. Its defaults come from
``configs/methods/<name>.yaml`` when that file exists, else from the class's ``default_config``.
"""
from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from benchmark.backbones.base import Backbone
from benchmark.context import RunContext
from benchmark.data.frames import materialize


class Method(abc.ABC):
    """Base class of every transfer method.

    Attributes:
        name: registry name, set by subclasses.
        version: integer identity of the method's code; part of every result's identity.
        trains: whether ``fit`` trains parameters (shown in tables' cost columns).
        default_config: defaults for plugin methods without a YAML file in ``configs/methods``.
        encoder_wrapper: ``(backbone, frames, compute) -> tokens`` around every :meth:`encode_frames`
            call; the runner installs the feature cache there (:func:`benchmark.cache.install`;
            ``bench run --no-cache`` leaves it None), methods never look at it.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1  # bump when training or feature code changes: older records become stale
    trains: ClassVar[bool] = False
    default_config: ClassVar[dict[str, Any]] = {}
    encoder_wrapper: Callable[[Backbone, Any, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor] | None = None

    def __init__(self, backbone: Backbone, config: dict[str, Any]):
        self.backbone = backbone
        self.config = dict(config)

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def fit(self, ctx: RunContext) -> dict[str, Any]:
        """Train (if the method trains) and return a record: curve, trainable params, time, memory."""
        return {"trainable_params": 0}

    @torch.inference_mode()
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Backbone tokens for ``(T,3,H,W)`` frames in ``[0,1]``, in batches of ``config['batch_size']``.

        The one inference entry to the encoder, so the runner's :attr:`encoder_wrapper` (the feature
        cache) sits here; ``frames`` may be lazily decoded (:class:`benchmark.data.frames.LazyFrames`),
        and the wrapper may serve their tokens without decoding them. Training paths with random
        augmentation call ``backbone.encode`` directly.
        """
        def compute(x: torch.Tensor) -> torch.Tensor:
            return self._batched(self.backbone.encode, x)

        if self.encoder_wrapper is None:
            return compute(materialize(frames))
        return self.encoder_wrapper(self.backbone, frames, compute)

    @torch.inference_mode()
    def encode_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """Backbone tokens ``(T, P', C)`` with the prefix tokens (a ViT's CLS) first, then the ``h·w`` patch tokens.

        Bypasses :attr:`encoder_wrapper`: the feature cache stores ``(T, h, w, C)`` grids under keys that do
        not name the token set (:mod:`benchmark.cache`), so these tokens are computed on every call (only the
        tradeoff task's ``cal_metric`` protocol reads them, and takes the grid from them).
        """
        return self._batched(self.backbone.encode_sequence, materialize(frames))

    def _batched(self, encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """``encode`` over ``x`` in batches of ``config['batch_size']`` on the method's device, float32."""
        batch = int(self.config.get("batch_size", 16))
        return torch.cat([encode(x[i : i + batch].to(self.device, non_blocking=True)).float()
                          for i in range(0, x.shape[0], batch)])

    @abc.abstractmethod
    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``(T,3,H,W)`` in ``[0,1]`` → features ``(T,h,w,C)``."""

    def video_embedding(self, frames: torch.Tensor) -> torch.Tensor:
        """One vector ``(C,)`` for a clip: the mean of its frame features (temporal methods override)."""
        return self.frame_features(frames).mean(dim=(0, 1, 2))
