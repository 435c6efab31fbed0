"""Fixtures for the training-method tests: a handful of tiny natural-texture videos.

Each video is a window panning over a different scikit-image photo, written as a folder of JPEG
frames (a layout ``benchmark.data.video`` reads directly). Real textures moving coherently give the cycle
walk something to learn in a few iterations; random pixels would not.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TRAIN_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "colorwheel")
HELD_OUT_PHOTOS = ("hubble_deep_field", "retina", "cat")  # never in a training set: for evaluation clips


def write_pan_videos(folder: Path, n_videos: int = 4, n_frames: int = 12, size: int = 128, step: int = 4,
                     photos: tuple[str, ...] = TRAIN_PHOTOS) -> Path:
    """``n_videos`` frame folders of ``n_frames`` JPEGs, each panning ``step`` px/frame over one photo."""
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    for v in range(n_videos):
        photo = np.asarray(getattr(skimage.data, photos[v % len(photos)])())
        if photo.ndim == 2:
            photo = np.repeat(photo[..., None], 3, axis=-1)
        photo = photo[..., :3]
        out = folder / f"video_{v:02d}"
        out.mkdir(exist_ok=True)
        for t in range(n_frames):
            y, x = 20 + t * step // 2, 20 + t * step
            Image.fromarray(photo[y : y + size, x : x + size]).save(out / f"{t:05d}.jpg", quality=95)
    return folder


@pytest.fixture(scope="session")
def pan_videos(tmp_path_factory) -> Path:
    """Four 12-frame 128×128 panning videos shared by the method tests (read-only)."""
    return write_pan_videos(tmp_path_factory.mktemp("train_videos"))


def write_mae_checkpoint(path: Path, dim: int = 64, depth: int = 2) -> Path:
    """A tiny ViT saved in MAE's release layout: ``{"model": encoder + decoder + mask_token}``."""
    import timm
    import torch

    torch.manual_seed(0)
    vit = timm.create_model("vit_base_patch16_224", embed_dim=dim, depth=depth, num_heads=1, num_classes=0)
    state = dict(vit.state_dict())
    state["mask_token"] = torch.zeros(1, 1, dim)  # MAE's file also carries its decoder: the converter drops it
    state["decoder_embed.weight"] = torch.zeros(dim // 2, dim)
    torch.save({"model": state}, path)
    return path


@pytest.fixture(scope="session")
def tiny_mae(tmp_path_factory):
    """A 2-block, 64-wide ViT built by ``build_backbone("mae", weights=...)`` from an MAE-layout file.

    Random weights; ~20x cheaper than ViT-Ti, so the training tests stay fast on a shared CPU.
    """
    from benchmark.backbones import build_backbone

    path = write_mae_checkpoint(tmp_path_factory.mktemp("weights") / "mae_pretrain_vit_base.pth")
    return build_backbone("mae", weights=path)


@pytest.fixture
def small_config():
    """``small_config(method, **overrides)``: the method's YAML defaults at test scale.

    96 px inputs (a 6×6 token grid, 3×3 walk nodes), batches of 2, one worker-free epoch, and an
    absolute lr large enough to move in a few steps (the published ``blr × batch / 256`` is ~1e-6
    at batch 2).
    """
    from benchmark.config import defaults, merge

    def make(method: str = "cosettle", **overrides):
        small = {"input_size": 96, "pre_resize": 112, "train_batch_size": 2, "epochs": 2, "warmup_epochs": 1,
                 "lr": 1e-3, "num_workers": 0, "checkpoint_every_iters": 1, "batch_size": 8}
        return merge(defaults("method", method), {**small, **overrides}, f"test {method}")

    return make


@pytest.fixture
def make_ctx(tmp_path):
    """``make_ctx(train_data, seed=0, **extra)``: a CPU RunContext with checkpoints under tmp_path."""
    from benchmark.context import RunContext

    def make(train_data: Path, seed: int = 0, work: Path | None = None, **extra):
        work = work or tmp_path
        return RunContext(data_root=None, train_data=train_data, work_dir=work, seed=seed, progress=False,
                          checkpoint_root=work / "ckpt", extra=extra)

    return make
