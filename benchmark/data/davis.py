"""DAVIS-2017 (semi-supervised video object segmentation), read as its authors distribute it.

Layout of ``DAVIS-2017-trainval-480p.zip`` (https://davischallenge.org/davis2017/code.html)::

    <root>/JPEGImages/480p/<seq>/00000.jpg ...
    <root>/Annotations/480p/<seq>/00000.png ...   indexed PNGs, pixel value = object id (0 = background)
    <root>/ImageSets/2017/val.txt                 one sequence name per line

The train/val release annotates every frame; the test-dev/challenge releases give only the first
frame (the reference the semi-supervised protocol propagates from). Both are accepted; anything in
between (a frame without its annotation) is an error, because the official evaluation
(davis2017-evaluation) would silently score the sequence on fewer frames.

Masks are indexed ('P' mode) PNGs with the PASCAL-VOC colour map, which DAVIS uses; reading one as RGB
would give colours instead of ids, so a non-palette annotation is rejected with the fix.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from benchmark.errors import UserError

LAYOUT = "JPEGImages/<res>/<seq>/%05d.jpg, Annotations/<res>/<seq>/%05d.png, ImageSets/2017/<split>.txt"


def _voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL-VOC colour map (as DAVIS's ``imwrite_indexed`` uses): bits of the index, interleaved.

    Bit ``3j + c`` of the index sets bit ``7 - j`` of channel ``c`` (c = R, G, B).
    """
    idx = np.arange(n)
    pal = np.zeros((n, 3), np.int64)
    for j in range(8):
        for c in range(3):
            pal[:, c] |= ((idx >> (3 * j + c)) & 1) << (7 - j)
    return pal.astype(np.uint8)


DAVIS_PALETTE: np.ndarray = _voc_palette()
DAVIS_PALETTE.setflags(write=False)


@dataclass
class DavisSequence:
    """One DAVIS sequence: frame files and annotation files in frame order.

    ``annotations`` has one file per frame (train/val), or only the first frame's (test-dev).
    """

    name: str
    frames: list[Path]
    annotations: list[Path]

    @property
    def fully_annotated(self) -> bool:
        """Whether every frame has ground truth (needed to score the sequence)."""
        return len(self.annotations) == len(self.frames)

    def object_ids(self) -> list[int]:
        """Object ids of the reference (first) annotation, background excluded."""
        return [int(i) for i in np.unique(read_mask(self.annotations[0])) if i != 0]

    def read_frames(self) -> np.ndarray:
        """All frames as ``uint8 (T, H, W, 3)``."""
        return np.stack([read_frame(p) for p in self.frames])

    def read_masks(self) -> np.ndarray:
        """All annotations as ``uint8 (T_annotated, H, W)`` object ids, validated.

        Raises:
            UserError: an annotation holds an object id absent from the first annotation (the
                semi-supervised protocol only knows the objects given in the reference frame).
        """
        masks = np.stack([read_mask(p) for p in self.annotations])
        known = set(np.unique(masks[0]).tolist())
        for path, m in zip(self.annotations[1:], masks[1:]):
            extra = sorted(set(np.unique(m).tolist()) - known)
            if extra:
                raise UserError(
                    f"annotation {path} has object id(s) {extra} that the first annotation "
                    f"{self.annotations[0]} does not have (ids {sorted(known - {0})}): every object must be "
                    "labelled in the first frame; fix the ids in this file"
                )
        return masks


def read_frame(path: str | Path) -> np.ndarray:
    """A frame as ``uint8 (H, W, 3)`` RGB."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise UserError(f"frame {path} does not exist: check the data root (expected {LAYOUT})") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"cannot read frame {path} ({e}): the image is corrupt; replace it") from None


def _open_indexed(path: Path, require_palette: bool) -> Image.Image:
    try:
        im = Image.open(path)
    except FileNotFoundError:
        raise UserError(f"annotation {path} does not exist: check the data root (expected {LAYOUT})") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"cannot read annotation {path} ({e}): the PNG is corrupt; replace it") from None
    if require_palette and im.mode != "P":
        im.close()
        raise UserError(
            f"annotation {path} is a {im.mode!r}-mode PNG, not an indexed palette PNG: DAVIS masks store "
            "object ids as palette indices; re-save it as mode 'P' (benchmark.data.davis.write_mask does)"
        )
    if im.mode not in ("P", "L"):
        im.close()
        raise UserError(
            f"mask {path} is a {im.mode!r}-mode image: object ids must be stored as an indexed ('P') or "
            "grey ('L') PNG whose pixel values are ids, not colours; re-save it with write_mask"
        )
    return im


def read_mask(path: str | Path, require_palette: bool = True) -> np.ndarray:
    """An annotation as ``uint8 (H, W)`` object ids.

    Args:
        path: the PNG.
        require_palette: reject anything but an indexed ('P') PNG, as DAVIS ground truth is. Pass
            False for predictions, which some methods save as grey ('L') id maps.

    Raises:
        UserError: the file is missing, corrupt or not an id map.
    """
    path = Path(path)
    with _open_indexed(path, require_palette) as im:
        try:
            return np.array(im, dtype=np.uint8)
        except OSError as e:  # truncated data surfaces only when the pixels are decoded
            raise UserError(f"cannot decode annotation {path} ({e}): the PNG is truncated; replace it") from None


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write object ids ``(H, W)`` as an indexed PNG with :data:`DAVIS_PALETTE` (the DAVIS result format)."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0 or mask.min() < 0 or mask.max() > 255:
        raise ValueError(f"a mask is a non-empty (H, W) array of ids in 0..255, got shape {mask.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(mask.astype(np.uint8))  # mode 'L'; putpalette turns it into 'P' without remapping
    im.putpalette(DAVIS_PALETTE.tobytes())
    im.save(path)


def _read_names(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"sequence list {path} does not exist: expected the DAVIS-2017 layout {LAYOUT}")
    names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if not names:
        raise UserError(f"sequence list {path} is empty: it must name one sequence per line")
    return names


def _image_size(path: Path, what: str) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"cannot read {what} {path} ({e}): the file is corrupt; replace it") from None


def _load_sequence(root: Path, name: str, resolution: str) -> DavisSequence:
    frame_dir = root / "JPEGImages" / resolution / name
    ann_dir = root / "Annotations" / resolution / name
    for d in (frame_dir, ann_dir):
        if not d.is_dir():
            raise UserError(f"folder {d} does not exist for sequence {name!r}: expected the DAVIS-2017 layout {LAYOUT}")
    frames = sorted(frame_dir.glob("*.jpg"))
    if not frames:
        raise UserError(f"no .jpg frames in {frame_dir}: expected {frame_dir}/00000.jpg, 00001.jpg, ...")
    stems = {p.stem for p in frames}
    extra = sorted(p for p in ann_dir.glob("*.png") if p.stem not in stems)
    if extra:
        raise UserError(f"annotation {extra[0]} has no frame {frame_dir / (extra[0].stem + '.jpg')}: remove it or add the frame")
    present = [ann_dir / f"{p.stem}.png" for p in frames]
    have = [p.is_file() for p in present]
    if not have[0]:
        raise UserError(f"annotation {present[0]} is missing: the first frame's mask is the reference every method starts from")
    if any(have[1:]) and not all(have):
        missing = present[have.index(False)]
        raise UserError(
            f"annotation {missing} is missing: sequence {name!r} annotates some frames but not this one; "
            "restore the file (train/val annotate every frame, test-dev only the first)"
        )
    annotations = present if all(have) else present[:1]
    size = _image_size(frames[0], "frame")
    for path in frames[1:]:
        other = _image_size(path, "frame")
        if other != size:
            raise UserError(f"frame {path} is {other} but {frames[0]} is {size} (W, H): frames of a sequence share one size")
    for path in annotations:
        with _open_indexed(path, require_palette=True) as im:
            if im.size != size:
                raise UserError(
                    f"annotation {path} is {im.size} (W, H) but its frames are {size}: "
                    f"use the annotations of the same resolution ({resolution})"
                )
    return DavisSequence(name=name, frames=frames, annotations=annotations)


def load_davis(root: str | Path, split: str = "val", resolution: str = "480p",
               sequences: Sequence[str] | None = None) -> list[DavisSequence]:
    """The sequences of a DAVIS-2017 split, checked for completeness (sizes, modes, missing files).

    Args:
        root: the DAVIS folder (holding ``JPEGImages``, ``Annotations``, ``ImageSets``).
        split: list file under ``ImageSets/2017`` (``train``, ``val``, ``test-dev``).
        resolution: ``480p`` or ``Full-Resolution``.
        sequences: keep only these names (each must be in the split).

    Raises:
        UserError: one line naming the missing/corrupt file and the expected layout.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"DAVIS folder {root} does not exist: pass the folder holding {LAYOUT}")
    names = _read_names(root / "ImageSets" / "2017" / f"{split}.txt")
    if sequences is not None:
        unknown = [s for s in sequences if s not in names]
        if unknown:
            hint = difflib.get_close_matches(unknown[0], names, n=1)
            raise UserError(
                f"sequence {unknown[0]!r} is not in the DAVIS {split} list"
                + (f"; did you mean {hint[0]!r}?" if hint else f"; available: {', '.join(names[:8])}...")
            )
        names = [n for n in names if n in set(sequences)]
    return [_load_sequence(root, n, resolution) for n in names]
