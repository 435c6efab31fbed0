"""Absolute positional embeddings of a timm ViT at any token grid, and a forward pass that takes them.

Two ways to resample a ``M × M`` embedding to the ``h × w`` grid of a non-square input (DAVIS's
480×880 → 30×55), named by the ViT backbone option ``pos_interp`` and recorded in every result:

* ``dino`` — DINO's ``interpolate_pos_encoding`` (github.com/facebookresearch/dino,
  ``vision_transformer.py``): bicubic with ``scale_factor = (h + 0.1) / M, (w + 0.1) / M``, no
  antialiasing, the embedding kept unchanged only when the grid is already ``M × M``. The scale factor
  (not the output size) sets the sampling positions, so they differ slightly from a size-based resize.
  Co-Settle's own model files use this code for MAE, MoCo v3, DINO, iBOT and I-JEPA, and DINOv2's
  ``interpolate_offset=0.1`` is the same trick (github.com/yafeng19/Co-Settle @ 764436e,
  ``models/{mae/models_mae.py, mocov3/vit_moco.py, dino/vision_transformer.py,
  ibot/models/vision_transformer.py, ijepa/deit.py, dinov2/dinov2/models/vision_transformer.py}``).
* ``timm`` — timm's ``resample_abs_pos_embed``: bicubic to the output size with antialiasing, which is
  what the same repository's BLIP and CLIP files do (``models/blip/vit.py``, ``models/clip/model.py``:
  ``size=(w0, h0)``, ``antialias=True``).

:func:`sequence_with_patch_pos` mirrors timm's ``VisionTransformer.forward_features`` with the patch
positions given, so a method can feed modified positions through the same path, such as Co-Settle's
PEA (:func:`upsample_crop_patch_pos`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed

from benchmark.errors import UserError

POS_INTERPS = ("dino", "timm")


def dino_interpolate(pos_embed: torch.Tensor, new_size: tuple[int, int], num_prefix_tokens: int) -> torch.Tensor:
    """DINO's ``interpolate_pos_encoding`` on a ``(1, prefix + M², C)`` embedding → ``(1, prefix + h·w, C)``."""
    prefix, patch = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    m = int(math.sqrt(patch.shape[1]))
    h, w = new_size
    if (h, w) == (m, m):
        return pos_embed
    grid = patch.float().reshape(1, m, m, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((h + 0.1) / m, (w + 0.1) / m), mode="bicubic")
    assert grid.shape[-2:] == (h, w), f"DINO's interpolation gave {tuple(grid.shape[-2:])}, expected {(h, w)}"
    patch = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1).to(pos_embed.dtype)
    return torch.cat([prefix, patch], dim=1)


def resampled_pos_embed(model: torch.nn.Module, new_size: tuple[int, int], pos_interp: str) -> torch.Tensor:
    """``model.pos_embed`` (prefix entries first, if the model adds them) at grid ``new_size``."""
    n_pre = 0 if model.no_embed_class else model.num_prefix_tokens
    if pos_interp == "dino":
        return dino_interpolate(model.pos_embed, new_size, n_pre)
    if pos_interp == "timm":
        return resample_abs_pos_embed(model.pos_embed, new_size=new_size, old_size=model.patch_embed.grid_size,
                                      num_prefix_tokens=n_pre)
    raise UserError(f"pos_interp {pos_interp!r} is unknown: use one of {', '.join(POS_INTERPS)}")


def sequence_with_patch_pos(model: torch.nn.Module, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Last-layer, post-norm tokens ``(B, prefix + h·w, C)`` of normalised ``x`` with embedding ``pos``,
    prefix (CLS, register) tokens first, as timm's ``forward_features`` returns them.

    ``pos``: ``(1, prefix + h·w, C)`` as :func:`resampled_pos_embed` returns it (the patch part may be
    replaced). Mirrors timm's ``_pos_embed`` + ``forward_features``: ``pos_drop``, ``patch_drop``,
    ``norm_pre`` (CLIP's ``ln_pre``), ``blocks``, ``norm`` (CLIP's ``ln_post``).
    """
    x = model.patch_embed(x)  # (B, h, w, C): dynamic_img_size models emit NHWC
    b, h, w, _ = x.shape
    x = x.reshape(b, h * w, -1)
    n_pre = 0 if model.no_embed_class else model.num_prefix_tokens
    x = x + pos[:, n_pre:]
    prefix = [t.expand(b, -1, -1) for t in (model.cls_token, model.reg_token) if t is not None]
    if prefix:
        pre = torch.cat(prefix, dim=1)
        x = torch.cat([pre if model.no_embed_class else pre + pos[:, :n_pre], x], dim=1)
    x = model.norm_pre(model.patch_drop(model.pos_drop(x)))
    return model.norm(model.blocks(x))


def tokens_with_patch_pos(model: torch.nn.Module, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The patch tokens of :func:`sequence_with_patch_pos` as a ``(B, h, w, C)`` grid."""
    h, w = (s // p for s, p in zip(x.shape[-2:], model.patch_embed.patch_size))
    return sequence_with_patch_pos(model, x, pos)[:, model.num_prefix_tokens :].reshape(x.shape[0], h, w, -1)


def upsample_crop_patch_pos(pos: torch.Tensor, grid: tuple[int, int], ratio: float, rng: torch.Generator) -> torch.Tensor:
    """Co-Settle's PEA (``interpolate_and_crop_pos_embed``): the ``grid`` patch part of ``pos`` upsampled
    bicubically to ``int((1 + ratio)·side)`` per side, then one random ``grid``-sized crop; prefix kept."""
    h, w = grid
    n_pre = pos.shape[1] - h * w
    up_h, up_w = int((1 + ratio) * h), int((1 + ratio) * w)
    patch = pos[:, n_pre:].reshape(1, h, w, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, size=(up_h, up_w), mode="bicubic", align_corners=False)
    oh = int(torch.randint(0, up_h - h + 1, (1,), generator=rng))
    ow = int(torch.randint(0, up_w - w + 1, (1,), generator=rng))
    patch = patch[:, :, oh : oh + h, ow : ow + w].permute(0, 2, 3, 1).reshape(1, h * w, -1)
    return torch.cat([pos[:, :n_pre], patch], dim=1)
