"""Full fine-tuning: Co-Settle's objective with the encoder unfrozen.

The comparison Co-Settle (Liu et al., CVPR 2026) argues against: instead of a light projection on a
frozen encoder, every encoder weight moves under the same self-supervised loss (cycle walk with PEA
plus the separability constraint, :class:`methods.cosettle.CoSettle`). Side by side in the
``tradeoff`` task this shows how much separability full fine-tuning gives up for consistency.

Differences from Co-Settle, and nothing else:

* the encoder runs with gradients and in train mode; the separability target is the current
  encoder's own features (what the authors' ``forward_adapter`` computes once its ``no_grad`` is
  removed), so the KL term couples encoder and projection;
* optional layer-wise lr decay, the BEiT/MAE fine-tuning recipe (MAE ``util/lr_decay.py:
  param_groups_lrd``: block ``i`` of ``L`` scaled by ``decay^(L - i)``, embeddings by ``decay^(L+1)``,
  the head by 1), through timm's ``param_groups_layer_decay`` on the timm encoder. timm gives the
  last block (and the final norm) scale 1, so every encoder scale is multiplied by ``decay`` once to
  leave scale 1 to the projection, which plays MAE's head; the one remaining difference is the
  final norm at ``decay`` (MAE: 1). ``layer_decay: 1.0`` turns it off;
* the saved weights hold the encoder and the projection, and ``frame_features`` uses the
  fine-tuned encoder.

Supervised end-to-end fine-tuning for classification (labels, a linear head, cross-entropy) is a
mode of the classification tasks, which own the labels; it is not this method.
"""
from __future__ import annotations

from typing import Any

from timm.optim import param_groups_layer_decay, param_groups_weight_decay
from torch import nn

from benchmark.context import RunContext
from methods.cosettle import CoSettle
from benchmark.registry import METHODS


@METHODS.register("finetune", "full fine-tuning of the encoder with Co-Settle's objective")
class FineTune(CoSettle):
    """Co-Settle's objective with the whole encoder trained (optional layer-wise lr decay)."""

    name = "finetune"
    freeze_encoder = False

    def _trainable(self) -> nn.Module:
        assert self.projection is not None
        return nn.ModuleDict({"encoder": self.backbone, "projection": self.projection})

    def _param_groups(self) -> list[dict[str, Any]]:
        wd = float(self.config["weight_decay"])
        decay = float(self.config["layer_decay"])
        if decay == 1.0:
            return param_groups_weight_decay(self._trainable(), wd)
        encoder = param_groups_layer_decay(self.backbone.model, weight_decay=wd, layer_decay=decay)
        for group in encoder:  # timm tops out at the last block; MAE keeps 1.0 for the head (our projection)
            group["lr_scale"] *= decay
        return encoder + param_groups_weight_decay(self.projection, wd)

    def fit(self, ctx: RunContext) -> dict[str, Any]:
        """Unfreeze the encoder, train it with the projection, and leave both in eval mode."""
        self.backbone.requires_grad_(True)
        try:
            record = super().fit(ctx)
        finally:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        return {**record, "layer_decay": float(self.config["layer_decay"])}
