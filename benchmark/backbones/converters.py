"""One converter per author checkpoint layout, each returning a plain timm-ViT-keyed state dict.

The layouts, as each group releases them:

==========  =====================================================================================
author      layout of the released file
==========  =====================================================================================
MAE         ``{"model": vit_state}`` (``mae_pretrain_vit_base.pth``)
DINO        ``vit_state`` plain (``dino_vitbase16_pretrain.pth``)
iBOT        ``{"state_dict": {"module."/"backbone." + key}}`` from the teacher (``checkpoint_teacher.pth``)
MoCo v3     ``{"state_dict": {"module.momentum_encoder." + key}}`` (``vit-b-300ep.pth.tar``)
CLIP        OpenAI state dict ``visual.conv1``, ``visual.transformer.resblocks.N``, ``visual.ln_post``
BLIP        ``{"model": {"visual_encoder." + key, "text_encoder...": ...}}`` (``model_base.pth``)
I-JEPA      ``{"encoder": {"module." + key}, "predictor": ..., "target_encoder": ...}``
DINOv2      ``{"teacher": {"backbone." + key, "dino_head...": ...}}`` (training checkpoint), or the
            released plain ``dinov2_vitb14_pretrain.pth``
==========  =====================================================================================

After unwrapping, timm's own ``checkpoint_filter_fn`` does the rest (OpenAI CLIP key renames, DINOv2
``mask_token`` removal, conv patch-embed reshape, positional-embedding resampling), so the hard part
uses the library rather than a copy of it. Projection heads are dropped: benchmarks read patch tokens.
"""
from __future__ import annotations

from typing import Any

from benchmark.backbones.weights import strip_prefix
from benchmark.errors import UserError

HEAD_PREFIXES = ("head.", "fc_norm.", "dino_head.", "ibot_head.", "decoder", "predictor")


def _require(ckpt: dict[str, Any], key: str, fmt: str) -> Any:
    if key not in ckpt:
        raise UserError(
            f"checkpoint is not in the {fmt} layout: it has no {key!r} entry (top-level keys: "
            f"{', '.join(list(ckpt)[:6])}); pass the authors' released file or choose the matching backbone"
        )
    return ckpt[key]


def _drop_heads(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}


def _unwrap_module(state: dict[str, Any]) -> dict[str, Any]:
    """Strip DDP's ``module.`` and the ``backbone.`` wrapper; keys outside the wrapper are heads."""
    for prefix in ("module.", "backbone."):
        if any(k.startswith(prefix) for k in state):
            state = strip_prefix(state, prefix)
    return state


def convert_mae(ckpt: dict[str, Any]) -> dict[str, Any]:
    """MAE (He et al., 2022; github.com/facebookresearch/mae): the encoder under ``model``."""
    return _drop_heads(_unwrap_module(_require(ckpt, "model", "MAE")))


def convert_dino(ckpt: dict[str, Any]) -> dict[str, Any]:
    """DINO (Caron et al., 2021): a plain ViT state dict; a full training checkpoint gives its teacher."""
    state = ckpt["teacher"] if "teacher" in ckpt else ckpt
    return _drop_heads(_unwrap_module(state))


def convert_ibot(ckpt: dict[str, Any]) -> dict[str, Any]:
    """iBOT (Zhou et al., 2022): the teacher's ``state_dict`` with ``module.``/``backbone.`` prefixes."""
    state = ckpt.get("teacher") or _require(ckpt, "state_dict", "iBOT")
    return _drop_heads(_unwrap_module(state))


def convert_mocov3(ckpt: dict[str, Any]) -> dict[str, Any]:
    """MoCo v3 (Chen et al., 2021): the momentum encoder inside ``state_dict`` (as its linear eval uses)."""
    state = strip_prefix(_unwrap_module(_require(ckpt, "state_dict", "MoCo v3")), "momentum_encoder.")
    if not state:
        raise UserError("checkpoint is not in the MoCo v3 layout: no 'module.momentum_encoder.' keys in state_dict")
    return _drop_heads(state)


def convert_clip(ckpt: dict[str, Any]) -> dict[str, Any]:
    """OpenAI CLIP (Radford et al., 2021) state dict; timm renames ``visual.*`` keys (``ln_post`` → ``norm``).

    The released ``ViT-B-16.pt`` is a TorchScript archive; export ``model.state_dict()`` from it once.
    """
    state = ckpt.get("state_dict", ckpt)
    if not any(k.startswith(("visual.", "module.visual.")) for k in state):
        raise UserError("checkpoint is not an OpenAI CLIP state dict: no 'visual.' keys; export clip_model.state_dict()")
    return state


def convert_blip(ckpt: dict[str, Any]) -> dict[str, Any]:
    """BLIP (Li et al., 2022; github.com/salesforce/BLIP): the image ViT under ``visual_encoder.``."""
    state = strip_prefix(ckpt.get("model", ckpt), "visual_encoder.")
    if not state:
        raise UserError("checkpoint is not in the BLIP layout: no 'visual_encoder.' keys under 'model'")
    return _drop_heads(state)


def convert_ijepa(ckpt: dict[str, Any]) -> dict[str, Any]:
    """I-JEPA (Assran et al., 2023): the context ``encoder`` (``module.`` prefixed), no CLS token."""
    return _drop_heads(_unwrap_module(_require(ckpt, "encoder", "I-JEPA")))


def convert_dinov2(ckpt: dict[str, Any]) -> dict[str, Any]:
    """DINOv2 (Oquab et al., 2024): ``teacher.backbone.*`` of a training checkpoint, or the plain release."""
    state = ckpt["teacher"] if "teacher" in ckpt else ckpt
    return _drop_heads(_unwrap_module(state))
