"""THUMOS-14 temporal action localisation in the ActivityNet JSON form most codebases ship.

Layout under the data set folder::

    annotations/thumos14.json     (or thumos14.json, or the only *.json in the folder / annotations/)
        {"database": {"video_test_0000004": {"subset": "test", "duration": 33.5, "fps": 30.0,
                       "annotations": [{"segment": [0.2, 1.1], "label": "CricketBowling"}, ...]}}}
    <anywhere below>/<video name>.mp4   (THUMOS ships validation/ and TH14_test_set_mp4/ folders)

This is the format of ActionFormer's and mmaction2's THUMOS-14 annotations (``segment`` in seconds,
``subset`` "Validation"/"Test" compared ignoring case; THUMOS trains on its validation set). Class
indices are the sorted label names of the whole database, so every subset agrees. The frame rate is
the annotation's ``fps`` when given, else the video's own.
"""
from __future__ import annotations

from pathlib import Path

from benchmark.errors import UserError
from benchmark.data.types import LocalisationVideo, Segment, read_json
from benchmark.data.video import video_fps, video_length, walk_videos

LAYOUT = ("THUMOS-14 in ActivityNet form: annotations/thumos14.json with "
          "database.<video>.{subset, annotations[].segment/label} and the videos <video>.mp4 below the folder")


def _annotation_file(root: Path) -> Path:
    if root.is_file():
        return root
    for cand in (root / "annotations" / "thumos14.json", root / "thumos14.json"):
        if cand.is_file():
            return cand
    found = sorted(root.glob("*.json")) + sorted(root.glob("annotations/*.json"))
    if len(found) == 1:
        return found[0]
    raise UserError(f"missing annotation file {root / 'annotations' / 'thumos14.json'}"
                    f"{f' ({len(found)} other JSON files found, name one)' if found else ''}: expected {LAYOUT}")


def load_thumos(root: str | Path, subset: str = "test") -> tuple[list[LocalisationVideo], list[str]]:
    """The videos of ``subset`` ("validation" or "test") with their segments, and the class names.

    ``root`` is the data set folder or the JSON file itself (its videos are then looked for beside it).

    Raises:
        UserError: the JSON is missing or malformed, the subset is empty, or a video is not on disk.
    """
    root = Path(root)
    path = _annotation_file(root)
    data = read_json(path, LAYOUT)
    db = data.get("database") if isinstance(data, dict) else None
    if not isinstance(db, dict) or not db:
        raise UserError(f"{path} has no non-empty 'database' object: expected {LAYOUT}")
    try:
        classes = sorted({str(a["label"]) for v in db.values() for a in v.get("annotations", [])})
        chosen = {k: v for k, v in db.items() if str(v["subset"]).lower() == subset.lower()}
    except (AttributeError, KeyError, TypeError):
        raise UserError(f"{path}: every database entry needs 'subset' and annotations with 'label': expected {LAYOUT}") from None
    if not chosen:
        subsets = sorted({str(v.get("subset")) for v in db.values()})
        raise UserError(f"{path} has no video in subset {subset!r} (it has {', '.join(subsets)})")
    search = path.parent.parent if path.parent.name == "annotations" else path.parent
    index = {p.stem: p for p in walk_videos(search)}
    label_of = {c: i for i, c in enumerate(classes)}
    videos = []
    for name in sorted(chosen):
        entry = chosen[name]
        if name not in index:
            raise UserError(f"video {name}.mp4 of {path} is not under {search}: expected {LAYOUT}")
        try:
            segs = [Segment(float(a["segment"][0]), float(a["segment"][1]), label_of[str(a["label"])])
                    for a in entry.get("annotations", [])]
        except (KeyError, IndexError, TypeError, ValueError):
            raise UserError(f"{path}: an annotation of {name} lacks a [start, end] 'segment' in seconds") from None
        fps = float(entry["fps"]) if entry.get("fps") else video_fps(index[name])
        videos.append(LocalisationVideo(index[name], name, sorted(segs, key=lambda s: (s.start, s.end)),
                                        fps, video_length(index[name])))
    return videos, classes
