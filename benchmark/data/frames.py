"""Frames that know where they came from, decoded only when someone looks at their pixels.

Why: the frozen encoder's tokens depend only on the file, the sampled indices, the preprocessing and
the encoder. When the feature cache already holds those tokens, decoding, resizing and hashing the
frames is wasted work (most of a second method's evaluation at protocol sizes). So a task asks the
data layer for a :class:`LazyFrames` (a stand-in for the ``(T,3,H,W)`` float tensor it used to build)
that carries a :class:`FrameSource`; the cache's encoder wrapper looks the source up and decodes only
on a miss. Anything else that touches the pixels (indexing, ``.to``, any torch function) decodes
them transparently, so methods keep treating the frames as a tensor.

A source is only as good as the file identity: the absolute path, size and modification time (in
nanoseconds) of the video file or of every frame image read. A file rewritten in place with the same
size and mtime would be served stale tokens; every writer we know of (copies, re-extraction,
re-encoding) changes the mtime.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmark.data.video import centre_crop, frame_files, read_video, to_tensor
from benchmark.errors import UserError

PREPROCESS_VERSION = 1  # bump when to_tensor/centre_crop or the readers change the pixels they return


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """uint8 ``(T,H,W,3)`` → float ``(T,3,H',W')`` in [0,1]: resize, then an optional centre crop.

    Attributes:
        size: ``(H', W')``, or an int for the short side (aspect kept), or None to keep the size
            (:func:`benchmark.data.video.to_tensor`).
        crop: side of the centre crop (:func:`benchmark.data.video.centre_crop`), or None.
        strict: refuse frames smaller than the crop instead of keeping the smaller side.
        antialias: antialiased bilinear resizing (torchvision), else ``cv2.resize``'s INTER_LINEAR.
            Part of the source's key: the two give different pixels, hence different tokens.
    """

    size: tuple[int, int] | int | None = None
    crop: int | None = None
    strict: bool = False
    antialias: bool = True

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        x = to_tensor(frames, self.size, self.antialias)
        if self.crop is None:
            return x
        h, w = x.shape[-2:]
        if self.strict and (h < self.crop or w < self.crop):
            raise UserError(f"frames of {h}x{w} are smaller than the {self.crop}px crop: lower the task's crop")
        return centre_crop(x, self.crop)


@functools.lru_cache(maxsize=1)
def _readers() -> dict[str, str]:
    """Versions of what turns bytes into pixels: another decoder may give other pixels."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"format": str(PREPROCESS_VERSION), "torch": torch.__version__,
           "no_decord": os.environ.get("I2V_NO_DECORD", "")}
    for pkg in ("decord", "av", "pillow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "-"
    return out


def file_identity(files: Sequence[Path]) -> list[tuple[str, int, int]]:
    """``(absolute path, size, mtime_ns)`` of each file: what a source's key stands on."""
    out = []
    for f in files:
        st = os.stat(f)
        out.append((str(Path(f).absolute()), st.st_size, st.st_mtime_ns))
    return out


@dataclasses.dataclass(frozen=True)
class FrameSource:
    """What determines a clip's pixels: the files read, the frame indices and the preprocessing."""

    files: tuple[tuple[str, int, int], ...]
    indices: tuple[int, ...] | None
    preprocess: Preprocess

    def digest(self) -> str:
        """A stable hex digest of the source (and of the reader versions that decode it)."""
        ident = {"files": self.files, "indices": self.indices, "preprocess": dataclasses.asdict(self.preprocess),
                 "readers": _readers()}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


class LazyFrames:
    """A ``(T,3,H,W)`` float clip in [0,1] that decodes on first use of its pixels.

    ``source`` is what the feature cache keys on; ``materialize()`` (or any tensor use: indexing,
    attributes, torch functions) decodes once and keeps the result.
    """

    def __init__(self, source: FrameSource | None, load: Callable[[], torch.Tensor], length: int):
        self.source = source
        self._load = load
        self._length = length
        self._tensor: torch.Tensor | None = None

    def materialize(self) -> torch.Tensor:
        if self._tensor is None:
            self._tensor = self._load()
        return self._tensor

    @property
    def decoded(self) -> bool:
        return self._tensor is not None

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, item: Any) -> torch.Tensor:
        return self.materialize()[item]

    def __getattr__(self, name: str) -> Any:  # .shape, .to, .float, ... of the decoded tensor
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.materialize(), name)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.materialize().cpu(), dtype=dtype)

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        def real(x: Any) -> Any:
            if isinstance(x, LazyFrames):
                return x.materialize()
            if isinstance(x, (list, tuple)):
                return type(x)(real(v) for v in x)
            return x

        return func(*real(args), **{k: real(v) for k, v in (kwargs or {}).items()})


def materialize(frames: torch.Tensor | LazyFrames) -> torch.Tensor:
    """The pixels of ``frames``, decoding a :class:`LazyFrames`."""
    return frames.materialize() if isinstance(frames, LazyFrames) else frames


def load_frames(path: str | Path, indices: Sequence[int], preprocess: Preprocess) -> LazyFrames:
    """Frames ``indices`` of a video file or frame folder, preprocessed, decoded on first use."""
    return load_clips(path, np.asarray(indices, dtype=np.int64)[None], preprocess)[0]


def load_clips(path: str | Path, indices: np.ndarray, preprocess: Preprocess) -> list[LazyFrames]:
    """One lazy clip per row of ``indices`` ``(clips, T)``; the first miss decodes every clip's frames at once.

    The union of the rows is decoded once (as ``read_video`` of the sorted unique indices), so
    several clips of one video cost one decode, and none when every clip is a cache hit.
    """
    path = Path(path)
    indices = np.asarray(indices, dtype=np.int64)
    files = frame_files(path) if path.is_dir() else [path]
    try:
        ident = tuple(file_identity(files))
    except OSError:
        ident = None  # read_video will report the missing file when the pixels are needed
    uniq, inverse = np.unique(indices, return_inverse=True)
    inverse = inverse.reshape(indices.shape)

    @functools.lru_cache(maxsize=1)
    def decode_all() -> torch.Tensor:
        return preprocess(read_video(path, uniq))

    return [LazyFrames(FrameSource(ident, tuple(int(i) for i in row), preprocess) if ident else None,
                       functools.partial(lambda r: decode_all()[torch.from_numpy(r)], inv), len(row))
            for row, inv in zip(indices, inverse)]


class Video:
    """A whole video (file or list of frame images) whose shape is known without decoding it.

    For dense tasks, where the preprocessing depends on the frame size: ``shape`` reads one image
    header (frame images) or opens the container (video files); :meth:`tensor` gives the lazily
    preprocessed clip; ``np.asarray(video)`` decodes every frame as ``uint8 (T,H,W,3)``.
    """

    def __init__(self, path: str | Path, files: Sequence[Path] | None = None):
        self.path = Path(path)
        self.files = list(files) if files is not None else (frame_files(self.path) if self.path.is_dir() else None)

    @functools.cached_property
    def shape(self) -> tuple[int, int, int, int]:
        if self.files is not None:
            if not self.files:
                raise UserError(f"frame folder {self.path} has no .jpg/.png frames")
            try:
                with Image.open(self.files[0]) as im:
                    w, h = im.size
            except OSError as e:
                raise UserError(f"cannot read frame {self.files[0]} ({e}): the image is corrupt; replace it") from None
            return len(self.files), h, w, 3
        first = read_video(self.path, [0])
        from benchmark.data.video import video_length

        return video_length(self.path), first.shape[1], first.shape[2], 3

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self) -> np.ndarray:
        if self.files is None:
            return read_video(self.path)
        return np.stack([_read_image(f) for f in self.files])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self._read(), dtype=dtype)

    def tensor(self, preprocess: Preprocess) -> LazyFrames:
        """Every frame, preprocessed, decoded on first use."""
        try:
            ident = tuple(file_identity(self.files if self.files is not None else [self.path]))
        except OSError:
            ident = None
        return LazyFrames(FrameSource(ident, None, preprocess) if ident else None,
                          lambda: preprocess(self._read()), len(self))


def _read_image(path: Path) -> np.ndarray:
    """One RGB frame file; a corrupt one is a one-line error naming that file, not its folder."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise UserError(f"cannot read frame {path} ({e}): the image is corrupt; replace it") from None
