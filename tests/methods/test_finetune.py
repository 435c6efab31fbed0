"""Full fine-tuning: the encoder trains under Co-Settle's objective; layer-wise lr decay option."""
from __future__ import annotations

import copy

import pytest
import torch

from methods.finetune import FineTune
from methods.training import build_optimizer, build_scheduler


def test_finetune_moves_the_encoder_and_keeps_it_after_fit(tiny_mae, pan_videos, small_config, make_ctx):
    backbone = copy.deepcopy(tiny_mae)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    method = FineTune(backbone, small_config("finetune", epochs=1, warmup_epochs=0, input_size=64, checkpoint_every_iters=50))
    rec = method.fit(make_ctx(pan_videos))
    encoder_params = sum(p.numel() for p in backbone.parameters())
    assert rec["trainable_params"] == encoder_params + 64 * 64 + 64 + 2 * 64
    assert rec["checkpoint"].split("/")[-3] == "finetune"
    changed = [k for k, v in backbone.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("model.blocks.") for k in changed)
    assert not any(p.requires_grad for p in backbone.parameters()) and not backbone.training
    frames = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        tuned = method.projection(backbone.encode(frames))
        frozen = method.projection(tiny_mae.encode(frames))
    torch.testing.assert_close(method.frame_features(frames), tuned)
    assert not torch.allclose(tuned, frozen, atol=1e-4)

    reused = FineTune(copy.deepcopy(tiny_mae), small_config("finetune", epochs=1, warmup_epochs=0, input_size=64,
                                                            checkpoint_every_iters=50))
    assert reused.fit(make_ctx(pan_videos))["reused"] is True
    torch.testing.assert_close(reused.frame_features(frames), tuned)


def test_layer_decay_scales_lower_blocks_and_leaves_the_projection_at_full_lr(tiny_mae, small_config):
    method = FineTune(copy.deepcopy(tiny_mae), small_config("finetune", layer_decay=0.5))
    method._build_projection(seed=0)
    method.backbone.requires_grad_(True)
    groups = method._param_groups()
    opt = build_optimizer(groups, method.config)
    build_scheduler(opt, method.config, iters_per_epoch=4).step_update(4)  # end of warm-up: peak lr
    peak = method.config["lr"]
    by_param = {id(p): g for g in opt.param_groups for p in g["params"]}
    model = method.backbone.model
    # MAE's param_groups_lrd for L = 2 blocks: embeddings decay^3, block i decay^(2 - i), head (projection) 1
    assert by_param[id(model.patch_embed.proj.weight)]["lr"] == pytest.approx(peak * 0.5 ** 3)
    assert by_param[id(model.blocks[0].attn.qkv.weight)]["lr"] == pytest.approx(peak * 0.5 ** 2)
    assert by_param[id(model.blocks[1].mlp.fc1.weight)]["lr"] == pytest.approx(peak * 0.5 ** 1)
    assert by_param[id(method.projection[0].weight)]["lr"] == pytest.approx(peak)
    assert by_param[id(method.projection[0].bias)]["weight_decay"] == 0.0
