"""Co-Settle: projection and its per-backbone init, PEA view, frame pairs, one precision per step,
a training run and an MAE-layout checkpoint."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from benchmark.backbones import build_backbone
from benchmark.backbones.pos_embed import upsample_crop_patch_pos
from benchmark.data.pairs import FramePairs
from benchmark.errors import UserError
from methods.cosettle import INITS, CoSettle, Projection, asymmetric_tokens


@pytest.mark.parametrize("net,layers", [
    ("linear", [nn.Linear, nn.Tanh, nn.LayerNorm]),
    ("mlp2", [nn.Linear, nn.Tanh, nn.Linear, nn.LayerNorm]),
    ("mlp3", [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear, nn.LayerNorm]),
])
def test_projection_variants_follow_adapter_block(net, layers):
    p = Projection(8, net)
    assert [type(m) for m in p] == layers
    n_linear = layers.count(nn.Linear)
    assert sum(x.numel() for x in p.parameters()) == n_linear * (8 * 8 + 8) + 2 * 8
    assert all(not m.bias.detach().any() for m in p if isinstance(m, nn.Linear))


# The authors' model files (Co-Settle @ 764436e) build the adapter, then apply their _init_weights.
@pytest.mark.parametrize("name,family,init", [
    ("mae", "vit", "xavier_uniform"), ("mocov3", "vit", "xavier_uniform"),  # models_mae.py, vit_moco.py
    ("dino", "vit", "trunc_normal"), ("ibot", "vit", "trunc_normal"), ("blip", "vit", "trunc_normal"),
    ("ijepa", "vit", "trunc_normal"), ("dinov2", "vit", "trunc_normal"),
    ("clip", "vit", "torch_default"),  # clip/model.py applies no init to the adapter
    ("efficientnet_lite0", "cnn", "xavier_uniform"),  # outside the release: MAE's
])
def test_auto_init_is_the_backbones_own(name, family, init, small_config):
    backbone = SimpleNamespace(meta=SimpleNamespace(name=name, family=family))
    assert CoSettle(backbone, small_config()).config["init"] == init
    assert CoSettle(backbone, small_config(init="trunc_normal")).config["init"] == "trunc_normal"


def test_each_init_draws_from_its_distribution():
    torch.manual_seed(0)
    dim = 256
    xavier, tn, default, orthogonal = (Projection(dim, init=i)[0].requires_grad_(False) for i in INITS)
    bound = math.sqrt(6 / (2 * dim))  # xavier_uniform_: U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    assert xavier.weight.abs().max() <= bound and xavier.weight.abs().max() > 0.99 * bound
    assert float(tn.weight.std()) == pytest.approx(0.02, rel=0.05)  # trunc_normal_(std=.02): cut at ±2 absolute, as theirs
    assert default.weight.abs().max() <= 1 / math.sqrt(dim) and default.bias.abs().max() > 0  # kaiming_uniform(a=√5)
    assert torch.allclose(orthogonal.weight @ orthogonal.weight.T, torch.eye(dim), atol=1e-5)  # ours: W Wᵀ = I
    assert not xavier.bias.any() and not tn.bias.any() and not orthogonal.bias.any()


def test_bad_projection_name_is_a_user_error():
    with pytest.raises(UserError, match="linear, mlp2, mlp3"):
        Projection(8, "mlp4")


def test_asymmetric_view_with_ratio_zero_is_the_plain_encoder(tiny_mae):
    frames = torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = tiny_mae.encode(frames)
        same = asymmetric_tokens(tiny_mae, tiny_mae.normalise(frames), ratio=0.0, rng=torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, plain, rtol=1e-5, atol=1e-5)


def test_asymmetric_view_changes_positions_but_not_pixels(tiny_mae):
    seen: list[torch.Tensor] = []
    hook = tiny_mae.model.patch_embed.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    frames = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    try:
        with torch.no_grad():
            plain = tiny_mae.encode(frames)
            asym = asymmetric_tokens(tiny_mae, tiny_mae.normalise(frames), ratio=10.0, rng=torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])  # identical pixels into the patch embedding
    assert not torch.allclose(plain, asym, atol=1e-3)
    pos = tiny_mae.model.pos_embed
    cropped = upsample_crop_patch_pos(pos, (14, 14), 10.0, torch.Generator().manual_seed(0))
    assert cropped.shape == pos.shape and not torch.allclose(cropped, pos, atol=1e-4)
    assert torch.equal(cropped[:, 0], pos[:, 0])  # the CLS entry is not moved
    torch.testing.assert_close(upsample_crop_patch_pos(pos, (14, 14), 0.0, torch.Generator()), pos)


def test_cnn_backbone_turns_pea_off_and_normalises_its_tokens(small_config, tiny_mae):
    method = CoSettle(build_backbone("efficientnet_lite0"), small_config())
    assert method.config["asymmetric_pe"] is False and method.config["token_norm"] == "layernorm"
    assert "asymmetric_pe (PEA) forced false" in method.notes[0]
    tokens = 5 + 7 * torch.randn(2, 3, 3, 112)  # a CNN's scale (EfficientNet-Lite0: channel std ~6.6)
    normed = method._token_norm(tokens)
    torch.testing.assert_close(normed.mean(-1), torch.zeros(2, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(normed.std(-1, unbiased=False), torch.ones(2, 3, 3), atol=1e-3, rtol=0)
    vit = CoSettle(tiny_mae, small_config())
    assert vit.config["token_norm"] == "none" and torch.equal(vit._token_norm(tokens), tokens)
    with pytest.raises(UserError, match="token_norm"):
        CoSettle(tiny_mae, small_config(token_norm="batchnorm"))


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
    assert (rec["init"], rec["token_norm"], rec["step_precision"]) == ("xavier_uniform", "none", "fp32")
    assert rec["peak_memory_bytes"] > 0 and rec["train_seconds"] > 0
    feats = method.frame_features(torch.rand(3, 3, 64, 48))
    assert feats.shape == (3, 4, 3, 64)

    again = CoSettle(tiny_mae, small_config())
    rec2 = again.fit(make_ctx(pan_videos))
    assert rec2["reused"] is True and rec2["checkpoint"] == rec["checkpoint"]
    for a, b in zip(method.projection.state_dict().values(), again.projection.state_dict().values()):
        assert torch.equal(a, b)


def test_training_step_runs_every_view_in_the_callers_single_precision(tiny_mae, pan_videos, small_config, monkeypatch):
    """The authors' whole step sits in one autocast; Backbone.encode would impose its own (bf16 on CUDA)."""
    method = CoSettle(tiny_mae, small_config())
    method._build_projection(seed=0)
    batch = torch.stack([FramePairs(sorted(pan_videos.iterdir()), method.config, 0)[(0, i)] for i in range(2)])
    monkeypatch.setattr(type(tiny_mae), "encode", lambda *a, **k: pytest.fail("training must not call Backbone.encode"))
    dtypes: list[torch.dtype] = []
    hook = tiny_mae.model.blocks[-1].mlp.fc2.register_forward_hook(lambda m, a, out: dtypes.append(out.dtype))
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = method.training_step(batch, torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    assert dtypes == [torch.bfloat16, torch.bfloat16]  # f(t), f(t+gap) in one call; f_asy (PEA) in the other
    assert math.isfinite(out.loss.item())
