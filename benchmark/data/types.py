"""Records the video-level readers return, and the file checks every reader shares.

Readers return plain lists of these records (not torch Datasets) so that a task decides how it
samples and batches clips, and the feature cache can key on ``path`` alone. The helpers below turn
every missing, empty or malformed annotation file into one :class:`UserError` line that names the
file and the layout the data set's authors ship.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import UserError


@dataclass
class LabelledVideo:
    """A video with one class label (UCF101, HMDB51, SSv2).

    Attributes:
        path: the video file (or frame folder).
        label: 0-based class index into the reader's class-name list.
        name: the data set's own id of the video (``v_ApplyEyeMakeup_g08_c01``, an SSv2 id).
    """

    path: Path
    label: int
    name: str


@dataclass
class Segment:
    """An annotated action interval, in seconds, with its 0-based class index."""

    start: float
    end: float
    label: int


@dataclass
class LocalisationVideo:
    """A long video with its action segments (THUMOS-14 in ActivityNet JSON form).

    Attributes:
        path: the video file (or frame folder).
        name: the key of the video in the annotation ``database``.
        segments: ground-truth intervals, sorted by start time.
        fps: frames per second (from the annotation if it gives one, else from the video).
        num_frames: number of frames of the video.
    """

    path: Path
    name: str
    segments: list[Segment] = field(default_factory=list)
    fps: float = 0.0
    num_frames: int = 0


# --- reading annotation files: every failure is one line naming the file and the expected layout ---

def read_lines(path: Path, layout: str) -> list[str]:
    """Non-blank lines of a text annotation file, stripped (handles the CRLF of UCF101's lists).

    Raises:
        UserError: the file is missing, not text, or has no lines; ``layout`` is told as the fix.
    """
    if not path.is_file():
        raise UserError(f"missing annotation file {path}: expected {layout}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"annotation file {path} is not a text file: expected {layout}") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise UserError(f"annotation file {path} is empty: expected {layout}")
    return lines


def read_json(path: Path, layout: str) -> Any:
    """A JSON annotation file; a missing, truncated or non-JSON file is a one-line UserError."""
    if not path.is_file():
        raise UserError(f"missing annotation file {path}: expected {layout}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"annotation file {path} is not valid JSON ({e}): expected {layout}") from None


def first_existing(candidates: list[Path], probe: str) -> Path | None:
    """The first folder of ``candidates`` that holds ``probe`` (a relative path), else None."""
    return next((c for c in candidates if (c / probe).exists()), None)


def check_all_exist(paths: list[Path], listed_in: Path, layout: str) -> None:
    """Fail on the first listed video that is not on disk, saying how many more are missing."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UserError(
            f"{len(missing)} of {len(paths)} videos listed in {listed_in} are missing, e.g. {missing[0]}: expected {layout}"
        )
