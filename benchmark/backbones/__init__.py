"""Backbones: build any registered encoder by name.

``build_backbone("mae", weights="mae_pretrain_vit_base.pth")`` → a frozen :class:`Backbone` in eval
mode with ``requires_grad`` off. Every backbone, built-in or a plugin's, is a class (or factory)
registered with ``@BACKBONES.register("name")`` in its family file (``vit.py``, ``efficientnet.py``)
and called as ``cls(weights=..., **options)``; its options and their typed defaults are its keyword
arguments, validated by :func:`benchmark.config.configure` before anything is built.

Importing this package changes no global state: whether the Hugging Face hub may be reached is
decided where a run starts (``bench run --offline`` or ``HF_HUB_OFFLINE=1``, see
:func:`benchmark.backbones.weights.go_offline`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from benchmark.backbones.base import Backbone, BackboneMeta

__all__ = ["Backbone", "BackboneMeta", "build_backbone"]


def build_backbone(name: str, weights: str | Path | None = None, device: str | torch.device = "cpu",
                   **opts: Any) -> Backbone:
    """Build backbone ``name``, frozen, on ``device``.

    Raises:
        UserError: unknown name (with suggestions), missing or mismatching weights, bad options.
    """
    from benchmark.config import configure
    from benchmark.registry import BACKBONES

    factory = BACKBONES.get(name)
    backbone = factory(weights=weights, **configure("backbone", name, factory, opts))
    backbone.requires_grad_(False)
    return backbone.to(device).eval()
