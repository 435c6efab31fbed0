"""JHMDB (Jhuang et al. 2013), read as its authors distribute it, for keypoint propagation.

Layout of the release (http://jhmdb.is.tue.mpg.de/: ``Rename_Images``, ``joint_positions``, ``splits``)::

    <root>/Rename_Images/<class>/<video>/00001.png ...
    <root>/joint_positions/<class>/<video>/joint_positions.mat   pos_img: 2 × 15 × T, (x, y), 1-based
    <root>/splits/<class>_test_split<k>.txt                      "<video>.avi 1" (train) or "... 2" (test)

Keypoints are returned 0-based, ``(T, 15, 2)`` as (x, y), which is what CRW's ``eval_pck.py`` and its
data loader compute (``pos_img - 1``). The joints are in the order of :data:`JHMDB_JOINTS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from benchmark.errors import UserError

# The 15 puppet joints, in the order of pos_img's second axis (JHMDB README).
JHMDB_JOINTS: tuple[str, ...] = (
    "neck", "belly", "face", "right shoulder", "left shoulder", "right hip", "left hip",
    "right elbow", "left elbow", "right knee", "left knee", "right wrist", "left wrist",
    "right ankle", "left ankle",
)
LAYOUT = ("Rename_Images/<class>/<video>/%05d.png, joint_positions/<class>/<video>/joint_positions.mat, "
          "splits/<class>_test_split<k>.txt")
_SUBSETS = {"train": "1", "test": "2"}


@dataclass
class JhmdbVideo:
    """One JHMDB clip: frames in order and keypoints ``float32 (T, 15, 2)``, 0-based (x, y) pixels."""

    name: str
    action: str
    frames: list[Path]
    keypoints: np.ndarray


def read_keypoints(path: str | Path) -> np.ndarray:
    """``pos_img`` of a ``joint_positions.mat`` as ``float32 (T, 15, 2)``, converted to 0-based pixels.

    Raises:
        UserError: missing/corrupt file, no ``pos_img``, or not 2 × 15 × T.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"joint file {path} does not exist: expected the JHMDB layout {LAYOUT}")
    try:
        mat = scipy.io.loadmat(str(path))
    except (scipy.io.matlab.MatReadError, ValueError, TypeError, OSError, NotImplementedError) as e:
        raise UserError(f"cannot read joint file {path} ({e}): the .mat is corrupt; replace it") from None
    if "pos_img" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise UserError(f"joint file {path} has no 'pos_img' (it has {keys}): use JHMDB's joint_positions.mat files")
    pos = np.asarray(mat["pos_img"], dtype=np.float64)
    if pos.ndim == 2 and pos.shape == (2, len(JHMDB_JOINTS)):  # MATLAB drops a trailing singleton axis
        pos = pos[..., None]
    if pos.ndim != 3 or pos.shape[:2] != (2, len(JHMDB_JOINTS)):
        raise UserError(
            f"pos_img in {path} has shape {pos.shape}, expected 2 × {len(JHMDB_JOINTS)} × T; the file is not a JHMDB joint file"
        )
    return (pos.transpose(2, 1, 0) - 1.0).astype(np.float32)


def read_split(path: str | Path) -> list[tuple[str, str]]:
    """``(video name without .avi, "1"|"2")`` pairs of one split file.

    Raises:
        UserError: the file is missing, empty or has a malformed line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"split file {path} does not exist: expected the JHMDB layout {LAYOUT}")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("1", "2"):
            raise UserError(
                f"split file {path} line {n} is {line.strip()!r}: expected '<video>.avi 1' (train) or '<video>.avi 2' (test)"
            )
        name = parts[0][:-4] if parts[0].endswith(".avi") else parts[0]
        out.append((name, parts[1]))
    if not out:
        raise UserError(f"split file {path} is empty: it must list '<video>.avi 1|2' lines; restore it from JHMDB's splits.zip")
    return out


def load_jhmdb(root: str | Path, split: int = 1, subset: str = "test") -> list[JhmdbVideo]:
    """The clips of one JHMDB split and subset, with their keypoints.

    Args:
        root: the JHMDB folder.
        split: 1, 2 or 3 (label-propagation papers use split 1's test set).
        subset: ``test`` (lines marked 2) or ``train`` (marked 1).

    Raises:
        UserError: one line naming the missing/corrupt file and the expected layout.
    """
    root = Path(root)
    if split not in (1, 2, 3):
        raise UserError(f"JHMDB split {split!r} does not exist: use 1, 2 or 3")
    if subset not in _SUBSETS:
        raise UserError(f"JHMDB subset {subset!r} is unknown: use 'test' or 'train'")
    split_dir = root / "splits"
    files = sorted(split_dir.glob(f"*_test_split{split}.txt")) if split_dir.is_dir() else []
    if not files:
        raise UserError(f"no split files {split_dir}/<class>_test_split{split}.txt: expected the JHMDB layout {LAYOUT}")
    videos = []
    for split_file in files:
        action = split_file.name[: -len(f"_test_split{split}.txt")]
        for name, flag in read_split(split_file):
            if flag != _SUBSETS[subset]:
                continue
            frame_dir = root / "Rename_Images" / action / name
            frames = sorted(frame_dir.glob("*.png")) if frame_dir.is_dir() else []
            if not frames:
                raise UserError(f"no .png frames in {frame_dir} (listed in {split_file}): expected the JHMDB layout {LAYOUT}")
            mat = root / "joint_positions" / action / name / "joint_positions.mat"
            keypoints = read_keypoints(mat)
            if len(keypoints) != len(frames):
                raise UserError(
                    f"joint file {mat} has {len(keypoints)} frames but {frame_dir} has {len(frames)}: "
                    "the frames and joints of a clip must match; re-extract the clip"
                )
            videos.append(JhmdbVideo(name=name, action=action, frames=frames, keypoints=keypoints))
    if not videos:
        raise UserError(f"the JHMDB split {split} files in {split_dir} list no {subset} videos (marked {_SUBSETS[subset]})")
    return videos
