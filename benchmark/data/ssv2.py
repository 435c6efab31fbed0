"""Something-Something v2 (Goyal et al., 2017) as Qualcomm (formerly 20BN) distributes it.

Layout under the data set folder::

    20bn-something-something-v2/<id>.webm      (or videos/<id>.webm, or <id>.webm directly;
                                                <id>.mp4 is accepted for the common re-encode)
    labels/labels.json                         {"Approaching something with your camera": "0", ...}
    labels/train.json, labels/validation.json  [{"id": "78687", "label": "holding potato next to
                                                 vicks vaporub bottle", "template": "Holding [something]
                                                 next to [something]", "placeholders": [...]}, ...]

The older 20BN release names the same files ``something-something-v2-{labels,train,validation}.json``;
both are read. As in SlowFast's ``Ssv2`` dataset, an entry's class is its ``template`` with the
brackets removed, looked up in ``labels.json``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.errors import UserError
from benchmark.data.types import LabelledVideo, check_all_exist, read_json

LAYOUT = ("Something-Something v2 as distributed: labels/{labels,train,validation}.json and "
          "20bn-something-something-v2/<id>.webm")
VIDEO_EXTENSIONS = (".webm", ".mp4")


def _label_file(root: Path, name: str) -> Path:
    for cand in (root / "labels" / f"{name}.json", root / f"something-something-v2-{name}.json",
                 root / "annotations" / f"something-something-v2-{name}.json"):
        if cand.is_file():
            return cand
    return root / "labels" / f"{name}.json"  # the current layout, named in the error


def _class_ids(path: Path) -> dict[str, int]:
    raw: Any = read_json(path, LAYOUT)
    try:
        ids = {str(k): int(v) for k, v in raw.items()}
    except (AttributeError, TypeError, ValueError):
        raise UserError(f"{path} must map class names to id strings ({{\"Holding something\": \"16\"}}): {LAYOUT}") from None
    if sorted(ids.values()) != list(range(len(ids))):
        raise UserError(f"{path}: class ids must run 0..{len(ids) - 1} without gaps: {LAYOUT}")
    return ids


def _entries(path: Path, class_ids: dict[str, int]) -> list[tuple[str, int]]:
    data: Any = read_json(path, LAYOUT)
    if not isinstance(data, list) or not data:
        raise UserError(f"{path} must be a non-empty JSON list of {{id, template, ...}} entries: {LAYOUT}")
    entries = []
    for k, entry in enumerate(data):
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            raise UserError(f"{path} entry {k} lacks 'id' or 'template': {LAYOUT}")
        name = str(entry["template"]).replace("[", "").replace("]", "")
        if name not in class_ids:
            raise UserError(f"{path} entry {k} (id {entry['id']}): class {name!r} is not in labels.json")
        entries.append((str(entry["id"]), class_ids[name]))
    return entries


def load_ssv2(root: str | Path) -> tuple[list[LabelledVideo], list[LabelledVideo], list[str]]:
    """Train and validation videos of Something-Something v2, and the class names ordered by id.

    Raises:
        UserError: a label file is missing, not JSON or malformed, or a listed video is not on disk.
    """
    root = Path(root)
    class_ids = _class_ids(_label_file(root, "labels"))
    classes = [name for name, _ in sorted(class_ids.items(), key=lambda kv: kv[1])]
    subsets = {name: _entries(_label_file(root, name), class_ids) for name in ("train", "validation")}
    first = subsets["train"][0][0]
    dirs = [root / "20bn-something-something-v2", root / "videos", root]
    found = next(((d, e) for e in VIDEO_EXTENSIONS for d in dirs if (d / f"{first}{e}").is_file()), None)
    if found is None:
        raise UserError(f"video {first}.webm listed in {_label_file(root, 'train')} is not under "
                        f"{dirs[0]} (nor videos/ or {root}): expected {LAYOUT}")
    video_dir, ext = found
    out = []
    for name, entries in subsets.items():
        vids = [LabelledVideo(video_dir / f"{vid}{ext}", label, vid) for vid, label in entries]
        check_all_exist([v.path for v in vids], _label_file(root, name), LAYOUT)
        out.append(vids)
    return out[0], out[1], classes
