"""AdViSe: the released recipe's constants are the defaults; its clip augmentation and ImageNet
normalisation do what the release does; temporal kernels really mix (or, at kernel 1, don't mix)
frames; every TMM type runs; training records memory, time and its curve and reuses its checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.backbones import build_backbone
from benchmark.config import defaults
from benchmark.context import RunContext
from benchmark.errors import UserError
from methods.advise import AdViSe


@pytest.fixture(scope="module")
def backbone():
    return build_backbone("efficientnet_lite0")  # real ImageNet weights, stride 16, 112 channels


def make(backbone, **over) -> AdViSe:
    torch.manual_seed(0)
    return AdViSe(backbone, {**defaults("method", "advise"), **over})


def test_defaults_scale_released_widths_to_the_backbone(backbone):
    m = make(backbone)
    # ViT-B 768 → 256 → 512 in the release; 112 channels → 40 → 72 (multiples of 8)
    assert m.out_dim == 72 and m.tmm[0].a.out_channels == 40 and len(m.tmm) == 4
    assert m.tmm[0].a.kernel_size == (3, 1, 1)
    assert m.head.mlp[0].out_features == 1024 and isinstance(m.head.mlp[1], torch.nn.BatchNorm1d)
    assert m.head.mlp[-1].out_features == 4  # rates {1, 2, 4, 8}


def test_released_constants_are_the_defaults(backbone):
    """advise-video-ssl: configs/pretrain/AdViSe.yaml, configs/defaults.py, utils/solver.py, datasets/__init__.py."""
    cfg = defaults("method", "advise")
    assert cfg["base_lr"] * cfg["train_batch_size"] / 64 == pytest.approx(5e-4)  # BASE_LR 1e-3 × 8 × 4 / 64
    assert (cfg["weight_decay"], cfg["decay_norms"], tuple(cfg["betas"])) == (1e-6, True, (0.9, 0.999))
    assert (cfg["augment"], cfg["resize"], cfg["crop"], cfg["color_prob"]) == ("release", [320, 256], 224, 0.8)
    assert cfg["color_jitter"][:3] == [0.2, 0.2, 0.2] and cfg["normalise"] == "imagenet" and cfg["amp"] is False
    assert cfg["encoder_precision"] == "bf16"  # TM.ENABLE_BF16 (models/temporal_modeling.py), on CUDA only;
    assert make(backbone)._encoder_precision() == "fp32"  # this CPU trains in fp32, and the training record says so
    assert (cfg["rates"], cfg["jitter"], cfg["num_frames"], cfg["stride"], cfg["clips_per_video"]) == ([1, 2, 4, 8], 0.2, 8, 2, 4)
    assert (cfg["epochs"], cfg["warmup_epochs"], cfg["label_smoothing"], cfg["mlp_dim"]) == (800, 5, 0.05, 1024)
    m = make(backbone)
    groups = m.param_groups()  # simple_adamw: AdamW(model.parameters(), weight_decay=1e-6), norms included
    assert len(groups) == 1 and groups[0]["weight_decay"] == 1e-6
    assert len(groups[0]["params"]) == len(list(m.trainable_modules().parameters()))
    ours = make(backbone, decay_norms=False).param_groups()
    assert ours[1]["weight_decay"] == 0.0 and all(p.ndim <= 1 for p in ours[1]["params"])


def test_release_augmentation_squashes_crops_and_keeps_colour():
    """Resize(w=320, h=256) squashes (aspect not kept), RandomCrop 224 and one jitter per clip, no grayscale."""
    from benchmark.data.rates import resize_frames, release_augment

    cfg = {**defaults("method", "advise"), "color_prob": 1.0}
    frames = np.zeros((3, 100, 400, 3), np.uint8)
    frames[..., 0], frames[..., 2] = 200, 30  # a red frame, repeated
    x = resize_frames(frames, cfg)
    assert x.shape == (3, 3, 256, 320)  # 100×400 squashed to 256×320
    out = release_augment(x, cfg, seed=1)
    assert out.shape == (3, 3, 224, 224)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])  # one crop and jitter for the clip
    assert (out[:, 0] - out[:, 2]).mean() > 0.3  # colour survives: no grayscale
    ours = release_augment(x, {**cfg, "augment": "ours", "grayscale_prob": 1.0}, seed=1)
    assert torch.allclose(ours[:, 0], ours[:, 2])  # the named option still greys


def test_imagenet_normalisation_for_every_encoder(backbone):
    """AugsWarper normalises with ImageNet mean/std whatever the encoder: the encoder's own
    normalisation, applied to the mapped frames, gives exactly that."""
    from benchmark.data.rates import IMAGENET_MEAN, IMAGENET_STD, imagenet_input

    from benchmark.backbones import build_backbone

    x = torch.rand(2, 3, 32, 32)
    want = (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    for b in (backbone, build_backbone("efficientnet_lite0", input_norm="imagenet")):  # the backbone option: no double mapping
        assert torch.allclose(b.normalise(make(b)._input(x)), want, atol=1e-5)
    got = backbone.normalise(imagenet_input(x, backbone.meta.mean, backbone.meta.std))
    assert backbone.meta.mean != IMAGENET_MEAN and torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("kernel, mixes", [(1, False), (3, True)])
def test_temporal_kernel_controls_mixing_across_frames(backbone, kernel, mixes):
    m = make(backbone, temporal_kernel=kernel)
    tokens = torch.randn(1, 12, 3, 3, backbone.dim)
    changed = tokens.clone()
    changed[:, 10] = torch.randn(3, 3, backbone.dim)  # change frame 10 only
    with torch.no_grad():
        a, b = m.temporal(tokens), m.temporal(changed)
    # 4 blocks of 3×1×1 reach 4 frames away: frames 0..5 never see frame 10
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-5)
    assert torch.allclose(a[:, 6:10], b[:, 6:10], atol=1e-5) is not mixes  # the neighbours do iff kernel > 1


@pytest.mark.parametrize("tmm", ["resnet3d", "conv3d", "transformer"])
def test_every_tmm_type_gives_per_frame_features_and_sees_order(backbone, tmm):
    m = make(backbone, tmm=tmm, num_heads=8, spatial_pool=2, channel_pool=64)
    frames = torch.rand(5, 3, 64, 64)
    feats = m.frame_features(frames)
    assert feats.shape == (5, 2, 2, m.out_dim) and torch.isfinite(feats).all()
    assert m.video_embedding(frames).shape == (m.out_dim,)
    rev = m.frame_features(frames.flip(0)).flip(0)
    assert not torch.allclose(feats, rev, atol=1e-4)  # reversing time is not a mere permutation


def test_bad_options_are_one_line_user_errors(backbone):
    with pytest.raises(UserError, match="temporal_kernel"):
        make(backbone, temporal_kernel=2)
    with pytest.raises(UserError, match="tmm"):
        make(backbone, tmm="lstm")
    with pytest.raises(UserError, match="num_heads"):
        make(backbone, tmm="transformer", num_heads=5)


def test_fit_records_memory_time_curve_and_reuses_checkpoint(backbone, pan_videos, tmp_path):
    # the un-cached path: clips decoded, augmented and encoded every step
    cfg = dict(epochs=2, warmup_epochs=1, train_batch_size=2, clips_per_video=2, num_frames=4, resize=[64, 48],
               crop=48, batch_size=64)
    ctx = RunContext(data_root=None, train_data=pan_videos, work_dir=tmp_path, progress=False,
                     checkpoint_root=tmp_path / "ckpt")
    m = make(backbone, **cfg)
    before = {k: v.clone() for k, v in m.tmm.state_dict().items()}
    rec = m.fit(ctx)
    assert rec["reused"] is False and rec["iterations"] == 4 and len(rec["curve"]) == 4 and rec["encoder_precision"] == "fp32"
    assert rec["peak_memory_bytes"] > 0 and rec["train_seconds"] > 0
    n_params = sum(p.numel() for p in m.trainable_modules().parameters())
    assert rec["trainable_params"] == n_params and n_params < sum(p.numel() for p in backbone.parameters())
    assert all("rate_acc" in row and row["loss"] > 0 for row in rec["curve"])
    peak = defaults("method", "advise")["base_lr"] * 2 / 64  # utils/solver.py: BASE_LR × batch / 64
    assert max(row["lr"] for row in rec["curve"]) == pytest.approx(peak)
    assert any(not torch.equal(before[k], v) for k, v in m.tmm.state_dict().items())
    assert not m.tmm.training and not m.head.training  # evaluation after fit uses running BN stats
    again = make(backbone, **cfg)
    rec2 = again.fit(ctx)
    assert rec2["reused"] is True
    for k, v in m.tmm.state_dict().items():
        assert torch.equal(v, again.tmm.state_dict()[k])
