"""Frozen baseline: the image encoder's own patch tokens, untouched.

Every transfer method is measured against this row (the Δ column of ``bench table``).
"""
from __future__ import annotations

import torch

from methods.base import Method
from benchmark.registry import METHODS

# The frozen ViTs whose model file in Co-Settle @ 764436e returns no CLS token to cal_metric.py (which calls
# ``model(x, use_adapter=False, eval_metric=True)`` → ``forward_no_adapter``): MAE's ``forward_encoder_eval``
# returns ``x[:, 1:]`` (models/mae/models_mae.py), CLIP's ``ln_post(x[:, 1:, :])`` (models/clip/model.py,
# every CLIP checkpoint). DINO, MoCo v3, BLIP (``return x``), iBOT (built with ``return_all_tokens=True``) and
# DINOv2 (``x_norm_no_reg``: CLS + patches) keep it; I-JEPA has none; other ViTs (tests, plugins) keep it.
CAL_METRIC_WITHOUT_CLS = frozenset({"mae", "clip", "clip_l14", "clip_l14_dcr"})


@METHODS.register("frozen", "the frozen encoder's patch features, unchanged (baseline)")
class Frozen(Method):
    """The frozen encoder's patch features, unchanged (baseline)."""

    name = "frozen"

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encode_frames(frames)

    def frame_tokens(self, frames: torch.Tensor) -> torch.Tensor | None:
        """``(T, 1 + h·w, D)``: the tokens cal_metric.py reads from this frozen backbone, CLS first, where its
        authors' file keeps the CLS; None where it does not (:data:`CAL_METRIC_WITHOUT_CLS`, a CNN): the grid
        of :meth:`frame_features` is then the whole token set (the tradeoff task's ``cal_metric`` protocol)."""
        if not self.backbone.num_prefix_tokens or self.backbone.meta.name in CAL_METRIC_WITHOUT_CLS:
            return None
        return self.encode_tokens(frames)
