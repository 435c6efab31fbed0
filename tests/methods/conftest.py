"""Fixtures for the training-method tests: a handful of tiny natural-texture videos.

Each video is a window panning over a different scikit-image photo, written as a folder of JPEG
frames (a layout ``tasks.data.video`` reads directly). Real textures moving coherently give the cycle
walk something to learn in a few iterations; random pixels would not.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "immunohistochemistry")


def write_pan_videos(folder: Path, n_videos: int = 4, n_frames: int = 12, size: int = 128, step: int = 4) -> Path:
    """``n_videos`` frame folders of ``n_frames`` JPEGs, each panning ``step`` px/frame over one photo."""
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    for v in range(n_videos):
        photo = np.asarray(getattr(skimage.data, PHOTOS[v % len(PHOTOS)])())
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
