"""The backbone options Co-Settle's evaluation depends on: DINO's positional-embedding interpolation
(``pos_interp``, against a transcription of DINO's code), the evaluation precision (``precision``) and the input
statistics (``input_norm``)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.backbones import build_backbone
from benchmark.backbones.pos_embed import dino_interpolate, resampled_pos_embed
from benchmark.errors import UserError


def dino_reference(pos_embed: torch.Tensor, w: int, h: int, patch_size: int) -> torch.Tensor:
    """facebookresearch/dino vision_transformer.py ``interpolate_pos_encoding``, transcribed (``x`` gone:
    ``npatch`` from the pixel size); ``w`` is the image's first spatial side as DINO names it."""
    npatch = (w // patch_size) * (h // patch_size)
    N = pos_embed.shape[1] - 1
    if npatch == N and w == h:
        return pos_embed
    class_pos_embed = pos_embed[:, 0]
    patch_pos_embed = pos_embed[:, 1:]
    dim = pos_embed.shape[-1]
    w0 = w // patch_size
    h0 = h // patch_size
    w0, h0 = w0 + 0.1, h0 + 0.1
    patch_pos_embed = nn.functional.interpolate(
        patch_pos_embed.reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2),
        scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)),
        mode='bicubic',
    )
    assert int(w0) == patch_pos_embed.shape[-2] and int(h0) == patch_pos_embed.shape[-1]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


@pytest.mark.parametrize("height,width", [(480, 880), (224, 224), (112, 144), (240, 224)])
def test_dino_interpolation_is_dinos_code(height, width):
    pos = torch.randn(1, 1 + 14 * 14, 32, generator=torch.Generator().manual_seed(0))
    ours = dino_interpolate(pos, (height // 16, width // 16), num_prefix_tokens=1)
    torch.testing.assert_close(ours, dino_reference(pos, height, width, 16), rtol=0, atol=0)


def test_dino_and_timm_resampling_differ_off_the_native_grid_only():
    vit = build_backbone("vit_tiny_random", pos_interp="dino")
    assert vit.pos_interp == "dino" and build_backbone("vit_tiny_random").pos_interp == "timm"
    native = [resampled_pos_embed(vit.model, (14, 14), k) for k in ("dino", "timm")]
    torch.testing.assert_close(native[0], native[1], rtol=0, atol=0)
    davis = [resampled_pos_embed(vit.model, (30, 55), k) for k in ("dino", "timm")]
    assert davis[0].shape == davis[1].shape == (1, 1 + 30 * 55, vit.dim)
    assert not torch.allclose(davis[0], davis[1], atol=1e-4)  # scale-factor sampling vs size-based, antialiased


def test_backbone_tokens_follow_the_option(tiny_mae):
    frames = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    assert tiny_mae.pos_interp == "dino"  # configs/backbones.yaml: MAE's own code interpolates DINO's way
    with torch.no_grad():
        dino = tiny_mae.encode(frames)
        tiny_mae.pos_interp = "timm"
        try:
            timm_tokens = tiny_mae.encode(frames)
            reference = tiny_mae.model.forward_features(tiny_mae.normalise(frames))[:, 1:].reshape(1, 4, 6, -1)
        finally:
            tiny_mae.pos_interp = "dino"
    torch.testing.assert_close(timm_tokens, reference)
    assert not torch.allclose(dino, timm_tokens, atol=1e-4)
    with pytest.raises(UserError, match="pos_interp"):
        build_backbone("vit_tiny_random", pos_interp="nearest")


def test_evaluation_precision_is_fp32_unless_asked():
    assert build_backbone("efficientnet_lite0").amp_dtype is None
    assert build_backbone("vit_tiny_random", precision="bf16").amp_dtype is torch.bfloat16
    with pytest.raises(UserError, match="precision"):
        build_backbone("vit_tiny_random", precision="fp8")


def test_input_norm_imagenet_feeds_every_encoder_imagenet_statistics():
    """The reference codes normalise with ImageNet's mean/std whatever the encoder (``input_norm: imagenet``);
    ``own`` keeps the encoder's (EfficientNet-Lite0: mean = std = 0.5). Training (Co-Settle's
    ``backbone.normalise``) and evaluation (``encode``) both go through :meth:`Backbone.normalise`."""
    from benchmark.backbones.base import IMAGENET_STATS

    x = torch.rand(2, 3, 32, 32)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET_STATS)
    own, imagenet = build_backbone("efficientnet_lite0"), build_backbone("efficientnet_lite0", input_norm="imagenet")
    assert torch.allclose(own.normalise(x), (x - 0.5) / 0.5)
    assert torch.allclose(imagenet.normalise(x), (x - mean) / std)
    assert not torch.allclose(own.encode(x), imagenet.encode(x))
    with pytest.raises(UserError, match="input_norm='zscore' is refused: input should be 'own' or 'imagenet'"):
        build_backbone("vit_tiny_random", input_norm="zscore")
