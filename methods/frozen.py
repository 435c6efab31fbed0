"""Frozen baseline: the image encoder's own patch tokens, untouched.

Every transfer method is measured against this row (the Δ column of ``bench table``).
"""
from __future__ import annotations

import torch

from methods.base import Method
from benchmark.registry import METHODS


@METHODS.register("frozen", "the frozen encoder's patch features, unchanged (baseline)")
class Frozen(Method):
    """The frozen encoder's patch features, unchanged (baseline)."""

    name = "frozen"

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encode_frames(frames)
