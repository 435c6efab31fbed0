"""UCF101 (Soomro et al., 2012) as CRCV distributes it: ``UCF101.rar`` and the recognition splits.

Layout under the data set folder::

    UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi      (or videos/<Class>/..., or <Class>/... directly)
    ucfTrainTestlist/classInd.txt                  "1 ApplyEyeMakeup" (1-based, CRLF line ends)
    ucfTrainTestlist/trainlist0<k>.txt             "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    ucfTrainTestlist/testlist0<k>.txt              "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"

The class of a listed video comes from its folder part, looked up in ``classInd.txt`` ignoring case;
the train list's label column is checked against it. Using the folder (not the file name) matters:
the files of class ``HandstandPushups`` are spelled ``v_HandStandPushups_*``.
"""
from __future__ import annotations

from pathlib import Path

from benchmark.errors import UserError
from benchmark.data.types import LabelledVideo, check_all_exist, first_existing, read_lines

LAYOUT = ("UCF101 as distributed: ucfTrainTestlist/{classInd,trainlist0K,testlist0K}.txt and "
          "UCF-101/<Class>/v_<Class>_gXX_cYY.avi")


def parse_class_index(path: Path, layout: str = LAYOUT) -> list[str]:
    """Class names ordered by their 1-based id in a ``classInd.txt``-style file ("<id> <name>")."""
    ids: dict[int, str] = {}
    for n, line in enumerate(read_lines(path, layout), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UserError(f"{path} line {n} is {line!r}, expected '<id> <ClassName>': {layout}")
        ids[int(parts[0])] = parts[1]
    if sorted(ids) != list(range(1, len(ids) + 1)):
        raise UserError(f"{path}: class ids must run 1..{len(ids)} without gaps: {layout}")
    return [ids[i] for i in range(1, len(ids) + 1)]


def _parse_list(path: Path, classes: list[str]) -> list[tuple[str, int]]:
    """(relative video path, 0-based label) of every line of a train/test list."""
    lookup = {c.lower(): i for i, c in enumerate(classes)}
    out = []
    for n, line in enumerate(read_lines(path, LAYOUT), 1):
        parts = line.split()
        rel = parts[0]
        cls = rel.split("/")[0] if "/" in rel else ""
        if len(parts) > 2 or cls.lower() not in lookup:
            raise UserError(f"{path} line {n} is {line!r}, expected '<Class>/v_<Class>_gXX_cYY.avi [label]' "
                            f"with <Class> in classInd.txt: {LAYOUT}")
        label = lookup[cls.lower()]
        if len(parts) == 2 and (not parts[1].isdigit() or int(parts[1]) - 1 != label):
            raise UserError(f"{path} line {n}: label {parts[1]} is not the id of class {cls} in classInd.txt")
        out.append((rel, label))
    return out


def load_ucf101(root: str | Path, split: int = 1) -> tuple[list[LabelledVideo], list[LabelledVideo], list[str]]:
    """Train and test videos of UCF101 recognition split ``split`` (1, 2 or 3), and the class names.

    Raises:
        UserError: a list file is missing, empty or malformed, or a listed video is not on disk.
    """
    root = Path(root)
    lists = root / "ucfTrainTestlist"
    if not lists.is_dir():
        raise UserError(f"missing folder {lists}: expected {LAYOUT}")
    classes = parse_class_index(lists / "classInd.txt")
    train = _parse_list(lists / f"trainlist{split:02d}.txt", classes)
    test = _parse_list(lists / f"testlist{split:02d}.txt", classes)
    video_dir = first_existing([root / "UCF-101", root / "videos", root], train[0][0])
    if video_dir is None:
        raise UserError(f"video {train[0][0]} listed in {lists / f'trainlist{split:02d}.txt'} is not under "
                        f"{root / 'UCF-101'} (nor videos/ or {root}): expected {LAYOUT}")
    records = []
    for rel_list, name in ((train, "train"), (test, "test")):
        vids = [LabelledVideo(video_dir / rel, label, Path(rel).stem) for rel, label in rel_list]
        check_all_exist([v.path for v in vids], lists / f"{name}list{split:02d}.txt", LAYOUT)
        records.append(vids)
    return records[0], records[1], classes
