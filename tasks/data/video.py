"""Reading videos: decord first, PyAV as the fallback, frame folders directly.

decord is the field's fast reader (mmaction2, VideoMAE use it) but cannot read GIF and is missing on
some platforms; PyAV (FFmpeg) reads everything FFmpeg does. A folder of ``.jpg``/``.png`` frames
(DAVIS, JHMDB, Co-Settle's Kinetics layout) is a video too. Whatever fails, the error is one line
naming the file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmark.errors import UserError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".gif", ".m4v", ".mpg", ".mpeg")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def frame_files(folder: Path) -> list[Path]:
    """Sorted image files of a frame folder."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)


def list_videos(folder: str | Path) -> list[Path]:
    """Videos in ``folder``: video files and sub-folders of frames, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"video folder {folder} does not exist: pass a folder of video files or frame folders")
    out = [p for p in sorted(folder.iterdir()) if (p.is_file() and is_video_file(p)) or (p.is_dir() and frame_files(p))]
    if not out:
        raise UserError(
            f"no videos in {folder}: expected files ending in {', '.join(VIDEO_EXTENSIONS[:4])}… or folders of frames"
        )
    return out


def _decord_reader(path: Path):
    if os.environ.get("I2V_NO_DECORD"):
        return None
    try:
        import decord
    except ImportError:
        return None
    try:
        return decord.VideoReader(str(path), num_threads=1)
    except Exception:  # decord raises its own DECORDError or RuntimeError on anything it can't read
        return None


def _pyav_frames(path: Path) -> list[np.ndarray]:
    import av

    try:
        with av.open(str(path)) as container:
            return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, ValueError, IndexError) as e:
        raise UserError(f"cannot decode video {path} ({type(e).__name__}): the file is corrupt or not a video; re-encode or remove it") from None


def video_length(path: str | Path) -> int:
    """Number of frames of a video file or frame folder."""
    path = Path(path)
    if path.is_dir():
        return len(frame_files(path))
    _check_file(path)
    vr = _decord_reader(path)
    if vr is not None:
        return len(vr)
    return len(_pyav_frames(path))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise UserError(f"video {path} does not exist: check the data root and the list file that names it")
    if path.stat().st_size == 0:
        raise UserError(f"video {path} is empty (0 bytes): re-download or remove it")


def read_video(path: str | Path, indices: Sequence[int] | None = None) -> np.ndarray:
    """Frames of a video as ``uint8`` array ``(T, H, W, 3)``; ``indices`` selects frames (clamped).

    Raises:
        UserError: the file is missing, empty, corrupt or has no frames.
    """
    path = Path(path)
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise UserError(f"frame folder {path} has no .jpg/.png frames")
        sel = files if indices is None else [files[min(max(int(i), 0), len(files) - 1)] for i in indices]
        try:
            return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sel])
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read a frame in {path} ({e}): the image is corrupt; replace it") from None
    _check_file(path)
    vr = _decord_reader(path)
    if vr is not None and len(vr) > 0:
        idx = list(range(len(vr))) if indices is None else [min(max(int(i), 0), len(vr) - 1) for i in indices]
        try:
            return vr.get_batch(idx).asnumpy()
        except Exception:  # fall through to PyAV, which reports the real decoding problem
            pass
    frames = _pyav_frames(path)
    if not frames:
        raise UserError(f"video {path} has no decodable frames: the file is truncated or not a video")
    if indices is None:
        return np.stack(frames)
    return np.stack([frames[min(max(int(i), 0), len(frames) - 1)] for i in indices])


def to_tensor(frames: np.ndarray, size: tuple[int, int] | int | None = None) -> torch.Tensor:
    """``uint8 (T,H,W,3)`` → float ``(T,3,H',W')`` in ``[0,1]``.

    ``size`` is ``(H', W')``, or an int for the short side (aspect kept), or None to keep the size.
    Resizing is bilinear with antialiasing, as torchvision's ``Resize`` does on tensors.
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    if size is None:
        return x
    if isinstance(size, int):
        h, w = x.shape[-2:]
        scale = size / min(h, w)
        size = (round(h * scale), round(w * scale))
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
