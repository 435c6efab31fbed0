"""Co-Settle: projection, PEA view, frame pairs, a training run and an MAE-layout checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from benchmark.backbones import build_backbone
from benchmark.errors import UserError
from methods.cosettle import (
    CoSettle,
    FramePairs,
    Projection,
    asymmetric_tokens,
    crop_upsampled_pos,
)


@pytest.mark.parametrize("net,layers", [
    ("linear", [nn.Linear, nn.Tanh, nn.LayerNorm]),
    ("mlp2", [nn.Linear, nn.Tanh, nn.Linear, nn.LayerNorm]),
    ("mlp3", [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear, nn.LayerNorm]),
])
def test_projection_variants_follow_adapter_block(net, layers):
    p = Projection(8, net)
    assert [type(m) for m in p.net] == layers
    n_linear = layers.count(nn.Linear)
    assert sum(x.numel() for x in p.parameters()) == n_linear * (8 * 8 + 8) + 2 * 8
    assert all(not m.bias.detach().any() for m in p.net if isinstance(m, nn.Linear))


def test_bad_projection_name_is_a_user_error():
    with pytest.raises(UserError, match="linear, mlp2, mlp3"):
        Projection(8, "mlp4")


def test_asymmetric_view_with_ratio_zero_is_the_plain_encoder(tiny_mae):
    frames = torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = tiny_mae.encode(frames)
        same = asymmetric_tokens(tiny_mae, frames, ratio=0.0, rng=torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, plain, rtol=1e-5, atol=1e-5)


def test_asymmetric_view_changes_positions_but_not_pixels(tiny_mae):
    seen: list[torch.Tensor] = []
    hook = tiny_mae.model.patch_embed.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    frames = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    try:
        with torch.no_grad():
            plain = tiny_mae.encode(frames)
            asym = asymmetric_tokens(tiny_mae, frames, ratio=10.0, rng=torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])  # identical pixels into the patch embedding
    assert not torch.allclose(plain, asym, atol=1e-3)
    pos = tiny_mae.model.pos_embed[:, 1:].reshape(1, 14, 14, -1)
    cropped = crop_upsampled_pos(pos, 10.0, torch.Generator().manual_seed(0))
    assert cropped.shape == pos.shape and not torch.allclose(cropped, pos, atol=1e-4)
    torch.testing.assert_close(crop_upsampled_pos(pos, 0.0, torch.Generator()), pos)


def test_cnn_backbone_turns_pea_off_with_a_note(small_config):
    method = CoSettle(build_backbone("efficientnet_lite0"), small_config())
    assert method.config["asymmetric_pe"] is False
    assert "asymmetric_pe (PEA) forced false" in method.notes[0]


def test_frame_pairs_are_gap_apart_share_a_crop_and_repeat_per_seed(tmp_path, small_config):
    video = tmp_path / "v"
    video.mkdir()
    for t in range(20):  # frame t is a uniform grey of level 10 t: the pair's levels reveal its indices
        Image.fromarray(np.full((40, 48, 3), 10 * t, np.uint8)).save(video / f"{t:03d}.png")
    data = FramePairs([video], small_config(input_size=32, pre_resize=40), seed=0)
    x = data[(0, 0)]
    assert x.shape == (2, 3, 32, 32)
    levels = (x.mean(dim=(1, 2, 3)) * 255).round()
    assert levels[1] - levels[0] == 10 * int(0.15 * 20)  # gap = int(clip_gap * n) = 3 frames
    assert torch.equal(x, data[(0, 0)])
    assert any(not torch.equal(x, data[(e, 0)]) for e in range(1, 6))


def test_training_step_learns_on_a_fixed_batch(tiny_mae, pan_videos, small_config):
    method = CoSettle(tiny_mae, small_config())
    method._build_projection(seed=0)
    batch = torch.stack([FramePairs(sorted(pan_videos.iterdir()), method.config, 0)[(0, i)] for i in range(2)])
    opt = torch.optim.AdamW(method.projection.parameters(), lr=1e-2)
    losses = []
    for i in range(8):
        out = method.training_step(batch, torch.Generator().manual_seed(0))  # same PEA crop every step
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.metrics["cycle_loss"])
    assert losses[-1] < 0.8 * losses[0]


def test_fit_on_an_mae_layout_checkpoint_records_its_curve_and_reuses_it(tiny_mae, pan_videos, small_config, make_ctx):
    assert tiny_mae.weights_id.startswith("mae_pretrain_vit_base.pth@sha256:") and tiny_mae.dim == 64
    method = CoSettle(tiny_mae, small_config())
    rec = method.fit(make_ctx(pan_videos))
    assert rec["reused"] is False and rec["iterations"] == 4 and len(rec["curve"]) == 4
    assert {"loss", "cycle_acc", "cycle_loss", "reg_loss", "lr"} <= set(rec["curve"][0])
    assert all(np.isfinite(r["loss"]) for r in rec["curve"])
    assert [e["epoch"] for e in rec["epoch_curve"]] == [0, 1]
    assert rec["trainable_params"] == 64 * 64 + 64 + 2 * 64
    assert rec["peak_memory_bytes"] > 0 and rec["train_seconds"] > 0
    feats = method.frame_features(torch.rand(3, 3, 64, 48))
    assert feats.shape == (3, 4, 3, 64)

    again = CoSettle(tiny_mae, small_config())
    rec2 = again.fit(make_ctx(pan_videos))
    assert rec2["reused"] is True and rec2["checkpoint"] == rec["checkpoint"]
    for a, b in zip(method.projection.state_dict().values(), again.projection.state_dict().values()):
        assert torch.equal(a, b)
