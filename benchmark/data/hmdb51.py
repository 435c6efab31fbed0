"""HMDB51 (Kuehne et al., 2011) as Serre lab distributes it: ``hmdb51_org.rar`` and ``test_train_splits.rar``.

Layout under the data set folder::

    <class>/<video>.avi                           (or hmdb51_org/<class>/..., or videos/<class>/...)
    testTrainMulti_7030_splits/<class>_test_split<k>.txt    "<video>.avi 1" per line (often with a
                                                            trailing space): 1 train, 2 test, 0 unused

(the splits may also sit one level down, in ``test_train_splits/`` or ``splits/``). There is no
class-index file: as in mmaction2's ``build_file_list``, classes are the split files' class names in
sorted order, so labels are 0..50 alphabetically.
"""
from __future__ import annotations

import re
from pathlib import Path

from benchmark.errors import UserError
from benchmark.data.types import LabelledVideo, first_existing, read_lines

SPLIT_DIR = "testTrainMulti_7030_splits"
LAYOUT = (f"HMDB51 as distributed: {SPLIT_DIR}/<class>_test_split<k>.txt with lines '<video>.avi 1|2|0' "
          "and videos <class>/<video>.avi")
_MARKS = {"1": "train", "2": "test", "0": "unused"}


def _split_dir(root: Path) -> Path:
    for cand in (root / SPLIT_DIR, root / "test_train_splits" / SPLIT_DIR, root / "splits" / SPLIT_DIR,
                 root / "test_train_splits", root / "splits"):
        if cand.is_dir() and any(cand.glob("*_test_split*.txt")):
            return cand
    raise UserError(f"missing split folder {root / SPLIT_DIR} (no *_test_split<k>.txt found): expected {LAYOUT}")


def load_hmdb51(root: str | Path, split: int = 1) -> tuple[list[LabelledVideo], list[LabelledVideo], list[str]]:
    """Train (mark 1) and test (mark 2) videos of HMDB51 split ``split`` (1, 2 or 3), and class names.

    Raises:
        UserError: the split files are missing, empty or malformed, or a listed video is not on disk.
    """
    root = Path(root)
    sdir = _split_dir(root)
    pattern = re.compile(rf"^(.+)_test_split{split}\.txt$")
    files = {m.group(1): p for p in sdir.iterdir() if (m := pattern.match(p.name))}
    if not files:
        raise UserError(f"no split files *_test_split{split}.txt in {sdir}: expected {LAYOUT}")
    classes = sorted(files)
    entries: dict[str, list[tuple[str, int, Path]]] = {"train": [], "test": [], "unused": []}
    for label, cls in enumerate(classes):
        for n, line in enumerate(read_lines(files[cls], LAYOUT), 1):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in _MARKS or not parts[0].lower().endswith(".avi"):
                raise UserError(f"{files[cls]} line {n} is {line!r}, expected '<video>.avi 1|2|0': {LAYOUT}")
            entries[_MARKS[parts[1]]].append((f"{cls}/{parts[0]}", label, files[cls]))
    listed = entries["train"] + entries["test"]
    if not listed:
        raise UserError(f"split {split} in {sdir} marks no video 1 (train) or 2 (test): expected {LAYOUT}")
    probe, _, probe_file = listed[0]
    video_dir = first_existing([root, root / "hmdb51_org", root / "videos"], probe)
    if video_dir is None:
        raise UserError(f"video {probe} named in {probe_file} is not under {root} (nor hmdb51_org/ or videos/): "
                        f"expected {LAYOUT}")
    missing = [(video_dir / rel, f) for rel, _, f in listed if not (video_dir / rel).exists()]
    if missing:
        raise UserError(f"{len(missing)} of {len(listed)} videos of split {split} are missing, e.g. {missing[0][0]} "
                        f"listed in {missing[0][1]}: expected {LAYOUT}")
    return ([LabelledVideo(video_dir / rel, label, Path(rel).stem) for rel, label, _ in entries["train"]],
            [LabelledVideo(video_dir / rel, label, Path(rel).stem) for rel, label, _ in entries["test"]], classes)
