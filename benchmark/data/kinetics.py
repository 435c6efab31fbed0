"""Unlabelled training videos (Kinetics-400 and the like) for the methods that train: Co-Settle, AdViSe.

``list_train_videos`` accepts the three forms such data comes in:

* a **folder**, walked recursively: every video file is a video, and every folder holding ``.jpg``/
  ``.png`` frames is one video (not descended into), so ``train/<ytid>_<start>_<end>.mp4`` (the CVDF
  download), ``train/<label>/...`` and extracted-frame trees all work;
* a **CSV**: the official Kinetics annotation (``label,youtube_id,time_start,time_end,split``), whose
  clips are found by their file stem ``<youtube_id>_<start:06d>_<end:06d>`` anywhere under the CSV's
  folder (its parent when the CSV sits in ``annotations/``) — clips deleted from YouTube since the
  list was made are skipped, as every Kinetics loader must; or any CSV with a ``path``/``video``
  column, or headerless with the path first;
* a **list file** (anything else): one video per line, as Co-Settle's ``--data_path`` file
  (``data/Kinetics-400/frames/val/<clip>``: frame folders, read with ``line.strip()`` in
  ``main_pretrain.py``) or mmaction2's ``<path> <label>`` lists. Relative entries are resolved
  against the list's folder, then the working directory (Co-Settle runs from its repository root).
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path

from benchmark.errors import UserError
from benchmark.data.types import check_all_exist, read_lines
from benchmark.data.video import is_video_file, walk_videos

log = logging.getLogger(__name__)
LAYOUT = ("a folder of videos (or of frame folders), a Kinetics CSV (label,youtube_id,time_start,time_end,split), "
          "or a text file with one video path or frame folder per line")


def _from_kinetics_csv(path: Path, rows: list[dict[str, str]]) -> list[Path]:
    if not rows:
        raise UserError(f"{path} has a header but no clips: expected {LAYOUT}")
    search = path.parent.parent if path.parent.name == "annotations" else path.parent
    index = {p.stem: p for p in walk_videos(search)}
    try:
        stems = [f"{r['youtube_id']}_{int(r['time_start']):06d}_{int(r['time_end']):06d}" for r in rows]
    except (KeyError, ValueError, TypeError):
        raise UserError(f"{path}: every row needs youtube_id, integer time_start and time_end: expected {LAYOUT}") from None
    found = [index[s] for s in stems if s in index]
    if not found:
        raise UserError(f"none of the {len(stems)} clips in {path} (e.g. {stems[0]}.mp4) is under {search}: "
                        f"expected {LAYOUT}")
    if len(found) < len(stems):
        log.warning("%d of %d clips listed in %s are not on disk (deleted from YouTube?): skipped",
                    len(stems) - len(found), len(stems), path)
    return found


def _resolve(entry: str, bases: list[Path]) -> Path:
    p = Path(entry)
    if p.is_absolute():
        return p
    return next((b / p for b in bases if (b / p).exists()), bases[0] / p)


def _from_csv(path: Path) -> list[Path]:
    lines = read_lines(path, LAYOUT)  # checks presence and emptiness
    rows = list(csv.reader(lines))
    header = [h.strip().lower() for h in rows[0]]
    if "youtube_id" in header:
        return _from_kinetics_csv(path, [dict(zip(header, r)) for r in rows[1:]])
    col = next((header.index(k) for k in ("path", "video", "filename") if k in header), None)
    body = rows if col is None else rows[1:]
    bases = [path.parent, Path.cwd()]
    try:
        return [_resolve(r[col or 0].strip(), bases) for r in body]
    except IndexError:
        raise UserError(f"{path} has a row without a path column: expected {LAYOUT}") from None


def list_train_videos(path: str | Path) -> list[Path]:
    """Training videos (files or frame folders) named by a folder, a CSV or a list file.

    Raises:
        UserError: the path does not exist, names no video, or lists videos that are not on disk.
    """
    path = Path(path)
    if path.is_dir():
        videos = walk_videos(path)
        if not videos:
            raise UserError(f"no videos or frame folders under {path}: expected {LAYOUT}")
        return videos
    if not path.exists():
        raise UserError(f"training data {path} does not exist: expected {LAYOUT}")
    if is_video_file(path):
        return [path]
    if path.suffix.lower() == ".csv":
        videos = _from_csv(path)
    else:
        bases = [path.parent, Path.cwd()]
        videos = []
        for line in read_lines(path, LAYOUT):
            whole = _resolve(line, bases)
            videos.append(whole if whole.exists() else _resolve(line.split()[0], bases))
    check_all_exist(videos, path, LAYOUT)
    return videos
