"""VIP (Video Instance-level Parsing, Zhou et al. 2018), the ``VIP_Fine`` release, for part propagation.

Layout, as the label-propagation evaluations read it (TimeCycle / UVC ``test_mask_vip.py`` and
``eval_vip.py``: ``VIP_Fine/Images/<video>``, ``VIP_Fine/Annotations/Category_ids/<video>``,
``VIP_Fine/lists/val_videos.txt``)::

    <root>/Images/<video>/<frame>.jpg
    <root>/Annotations/Category_ids/<video>/<frame>.png   part class per pixel, 0..19 (0 = background)
    <root>/lists/val_videos.txt                           one video per line (a path's last part counts)

Annotations are sparse: a frame is scored only where a ``Category_ids`` PNG with its name exists.
``<root>`` may also be the folder that contains ``VIP_Fine``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from benchmark.errors import UserError

VIP_NUM_CLASSES = 20
# Class names in id order, as the VIP/LIP evaluation code lists them (TimeCycle eval_vip.py).
VIP_CLASSES: tuple[str, ...] = (
    "background", "hat", "hair", "sun-glasses", "upper-clothes", "dress", "coat", "socks", "pants",
    "gloves", "scarf", "skirt", "torso-skin", "face", "right-arm", "left-arm", "right-leg", "left-leg",
    "right-shoe", "left-shoe",
)
IGNORE_LABEL = 255  # unlabelled pixels; the confusion matrix skips ids outside 0..19
LAYOUT = "Images/<video>/<frame>.jpg, Annotations/Category_ids/<video>/<frame>.png, lists/<split>_videos.txt"


@dataclass
class VipVideo:
    """One VIP video: all frames in order, and the annotated ones (frame index → Category_ids PNG)."""

    name: str
    frames: list[Path]
    labels: dict[int, Path]


def read_parts(path: str | Path) -> np.ndarray:
    """A ``Category_ids`` PNG as ``uint8 (H, W)`` part classes (0..19, 255 = ignore).

    Raises:
        UserError: missing or corrupt file, a colour image, or ids outside the 20 classes.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P"):
                raise UserError(
                    f"part labels {path} are a {im.mode!r}-mode image: Category_ids PNGs store the class id "
                    "(0..19) per pixel as grey or palette indices, not colours; use the Category_ids files"
                )
            arr = np.array(im, dtype=np.uint8)
    except FileNotFoundError:
        raise UserError(f"part labels {path} do not exist: expected the VIP_Fine layout {LAYOUT}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"cannot read part labels {path} ({e}): the PNG is corrupt; replace it") from None
    bad = np.unique(arr[(arr >= VIP_NUM_CLASSES) & (arr != IGNORE_LABEL)])
    if bad.size:
        raise UserError(
            f"part labels {path} contain id(s) {bad.tolist()[:5]} outside 0..{VIP_NUM_CLASSES - 1} "
            f"(and {IGNORE_LABEL} = ignore): is this an instance or human-id map instead of Category_ids?"
        )
    return arr


def _size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"cannot read {path} ({e}): the image is corrupt; replace it") from None


def _resolve_root(root: Path) -> Path:
    if (root / "Images").is_dir():
        return root
    if (root / "VIP_Fine" / "Images").is_dir():
        return root / "VIP_Fine"
    raise UserError(f"VIP folder {root} has no Images/ (nor VIP_Fine/Images/): pass the VIP_Fine folder holding {LAYOUT}")


def _annotation_dir(root: Path) -> Path:
    for d in (root / "Annotations" / "Category_ids", root / "Category_ids"):
        if d.is_dir():
            return d
    raise UserError(f"folder {root / 'Annotations' / 'Category_ids'} does not exist: expected the VIP_Fine layout {LAYOUT}")


def _read_video_list(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"video list {path} does not exist: expected the VIP_Fine layout {LAYOUT}")
    names = [ln.strip().rstrip("/").split("/")[-1] for ln in path.read_text().splitlines() if ln.strip()]
    if not names:
        raise UserError(f"video list {path} is empty: it must name one video per line")
    return names


def load_vip(root: str | Path, split: str = "val") -> list[VipVideo]:
    """The videos of a VIP_Fine split with their sparse part annotations.

    Every listed video must have frames and an annotation of its first frame (the reference that
    propagation starts from); an annotation whose frame is missing is an error.

    Raises:
        UserError: one line naming the missing/corrupt file and the expected layout.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"VIP folder {root} does not exist: pass the VIP_Fine folder holding {LAYOUT}")
    root = _resolve_root(root)
    ann_root = _annotation_dir(root)
    videos = []
    for name in _read_video_list(root / "lists" / f"{split}_videos.txt"):
        frame_dir, ann_dir = root / "Images" / name, ann_root / name
        frames = sorted(frame_dir.glob("*.jpg")) if frame_dir.is_dir() else []
        if not frames:
            raise UserError(f"no .jpg frames in {frame_dir} for listed video {name!r}: expected the layout {LAYOUT}")
        if not ann_dir.is_dir():
            raise UserError(f"folder {ann_dir} does not exist for video {name!r}: expected the layout {LAYOUT}")
        index = {p.stem: i for i, p in enumerate(frames)}
        labels: dict[int, Path] = {}
        for png in sorted(ann_dir.glob("*.png")):
            if png.stem not in index:
                raise UserError(
                    f"annotation {png} has no frame {frame_dir / (png.stem + '.jpg')}: remove it or restore the frame"
                )
            labels[index[png.stem]] = png
            if _size(png) != _size(frames[index[png.stem]]):
                raise UserError(
                    f"annotation {png} is {_size(png)} (W, H) but its frame is {_size(frames[index[png.stem]])}: "
                    "labels must have the frame's resolution; use the matching Category_ids file"
                )
        if 0 not in labels:
            raise UserError(
                f"annotation {ann_dir / (frames[0].stem + '.png')} of the first frame is missing: propagation "
                "starts from the first frame's labels; restore it"
            )
        videos.append(VipVideo(name=name, frames=frames, labels=labels))
    return videos
