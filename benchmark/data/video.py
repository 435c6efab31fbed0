"""Reading videos: decord first, PyAV as the fallback, frame folders directly.

decord is the field's fast reader (mmaction2, VideoMAE use it) but cannot read GIF and is missing on
some platforms; PyAV (FFmpeg) reads everything FFmpeg does. A folder of ``.jpg``/``.png`` frames
(DAVIS, JHMDB, Co-Settle's Kinetics layout) is a video too. Whatever fails, the error is one line
naming the file.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

# PyAV is imported before decord on purpose: both bundle FFmpeg, and once decord's copy is loaded
# first, PyAV can no longer open its libvpx encoder ("avcodec_open2(libvpx-vp9) returned 22").
import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmark.atomic import write_atomic
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


def walk_videos(folder: Path) -> list[Path]:
    """Video files and frame folders anywhere under ``folder`` (a frame folder is not descended into), sorted."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        if any(f.lower().endswith(FRAME_EXTENSIONS) for f in filenames):
            out.append(Path(dirpath))
            dirnames.clear()
            continue
        out.extend(Path(dirpath) / f for f in sorted(filenames) if is_video_file(Path(f)))
    return sorted(out)


@contextlib.contextmanager
def _quiet_c_stderr():
    """Silence the C-level stderr: FFmpeg and decord print there when a file won't open, and the
    user should see only our one-line error (or nothing, when PyAV then reads the file)."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _decord_reader(path: Path):
    if os.environ.get("I2V_NO_DECORD"):
        return None
    try:
        import decord
    except ImportError:
        return None
    try:
        with _quiet_c_stderr():
            return decord.VideoReader(str(path), num_threads=1)
    except Exception:  # decord raises its own DECORDError or RuntimeError on anything it can't read
        return None


def _pyav_frames(path: Path, wanted: set[int] | None = None) -> tuple[dict[int, np.ndarray], int]:
    """Decode with PyAV, keeping the frames in ``wanted`` (all if None) and the last frame decoded.

    Decoding stops after the largest wanted index, which bounds time and memory on long videos
    (THUMOS videos run for minutes). Returns the kept frames by index and the number decoded.
    """
    stop = max(wanted) if wanted else None
    kept: dict[int, np.ndarray] = {}
    count, frame = 0, None
    try:
        with av.open(str(path)) as container:
            for count, frame in enumerate(container.decode(video=0), start=1):
                if wanted is None or count - 1 in wanted:
                    kept[count - 1] = frame.to_ndarray(format="rgb24")
                if stop is not None and count > stop:
                    break
            if frame is not None and count - 1 not in kept:
                kept[count - 1] = frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, ValueError, IndexError) as e:
        raise UserError(f"cannot decode video {path} ({type(e).__name__}): the file is corrupt or not a video; re-encode or remove it") from None
    return kept, count


def video_length(path: str | Path) -> int:
    """Number of frames of a video file or frame folder.

    A video file's count is memoised on disk (:func:`_length_memo`): sampling needs it before any
    frame is read, and a feature-cache hit should not open the video at all (with PyAV, counting
    means decoding the whole file).
    """
    path = Path(path)
    if path.is_dir():
        return len(frame_files(path))
    _check_file(path)
    memo = _length_memo(path)
    try:
        return int(memo.read_text())
    except (OSError, ValueError):
        pass
    vr = _decord_reader(path)
    if vr is not None:
        count = len(vr)
    else:
        count = _pyav_frames(path, wanted=set())[1]
    if count == 0:
        raise UserError(f"video {path} has no decodable frames: the file is truncated or not a video")
    write_atomic(memo, lambda f: f.write(str(count).encode()))  # a failed memo write only costs speed
    return count


def _length_memo(path: Path) -> Path:
    """``<cache root>/video-lengths/<digest of absolute path, size, mtime_ns, reader>.txt``: a file rewritten
    in place gets a new entry."""
    from benchmark.data import cache_root

    st = path.stat()
    ident = f"{path.absolute()}|{st.st_size}|{st.st_mtime_ns}|no_decord={os.environ.get('I2V_NO_DECORD', '')}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return cache_root() / "video-lengths" / digest[:2] / f"{digest}.txt"


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
    kept, count = _pyav_frames(path, None if indices is None else {max(int(i), 0) for i in indices})
    if count == 0:
        raise UserError(f"video {path} has no decodable frames: the file is truncated or not a video")
    # indices past the end are clamped to the last frame, which _pyav_frames always keeps
    idx = range(count) if indices is None else [min(max(int(i), 0), count - 1) for i in indices]
    return np.stack([kept[i] for i in idx])


def video_fps(path: str | Path) -> float:
    """Average frame rate of a video file (decord, else PyAV); frame folders carry none."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a frame folder and has no frame rate: give the fps in the annotation file")
    _check_file(path)
    vr = _decord_reader(path)
    if vr is not None:
        return float(vr.get_avg_fps())
    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
    except (av.error.FFmpegError, ValueError, IndexError) as e:
        raise UserError(f"cannot open video {path} ({type(e).__name__}): the file is corrupt or not a video") from None
    if not rate:
        raise UserError(f"video {path} declares no frame rate: give the fps in the annotation file")
    return float(rate)


# Encoders by container, as the data sets ship: H.264 in .mp4 (Kinetics, THUMOS), MPEG-4 Part 2 in
# .avi (UCF101 and HMDB51 are XviD), VP9 in .webm (Something-Something v2).
# Quality is set high (PSNR ≈ 33 dB on textures, bounded by 4:2:0 chroma) so codec artefacts never
# carry information the content does not.
_CODECS = {
    ".mp4": ("libx264", {"crf": "12", "preset": "veryfast", "threads": "1"}, 0),  # x264 reads its own option
    ".avi": ("mpeg4", {}, 4_000_000),  # MPEG-4 Part 2 is rate-controlled: a high bit rate, not a quantiser
    ".webm": ("libvpx-vp9", {"crf": "12", "b:v": "0", "deadline": "realtime", "cpu-used": "8"}, 0),
}


def write_video(path: str | Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Encode ``uint8 (T, H, W, 3)`` frames (H, W even) to ``path`` with the codec its extension implies.

    One encoder thread, set through x264's own ``threads`` option and after the options (a thread count
    set before them left x264 threaded: two encodes of one clip decoded up to 39 grey levels apart).
    Byte-identical files are still not guaranteed in every process (seen once under pytest), so results
    are tied to the data actually read by its fingerprint, not to the generator's seed.
    """
    path = Path(path)
    if path.suffix.lower() not in _CODECS:
        raise ValueError(f"cannot write {path.suffix} videos: use one of {', '.join(_CODECS)}")
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"frames must be uint8 (T, H, W, 3) with even H and W, got {frames.shape}")
    codec, options, bit_rate = _CODECS[path.suffix.lower()]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = dict(options)
        stream.thread_count = 1  # after the options, which would otherwise leave x264 its default threads
        if bit_rate:
            stream.bit_rate = bit_rate
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        container.mux(stream.encode())
    return path


def to_tensor(frames: np.ndarray, size: tuple[int, int] | int | None = None, antialias: bool = True) -> torch.Tensor:
    """``uint8 (T,H,W,3)`` → float ``(T,3,H',W')`` in ``[0,1]``.

    ``size`` is ``(H', W')``, or an int for the short side (aspect kept), or None to keep the size.
    Resizing is bilinear with antialiasing, as torchvision's ``Resize`` does on tensors; with
    ``antialias=False`` it is ``cv2.resize``'s ``INTER_LINEAR`` (half-pixel centres, no prefilter),
    what the label-propagation reference loaders call.
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
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=antialias).clamp_(0, 1)

def centre_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Centre ``size``×``size`` crop of ``(T,3,H,W)`` frames (the whole side where it is smaller)."""
    h, w = frames.shape[-2:]
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return frames[..., top : top + size, left : left + size]
