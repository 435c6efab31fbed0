"""Video-level readers on hand-made fixtures that copy the real annotation files' format (CRLF list
files, HMDB51 names with brackets and trailing spaces, SSv2 templates, ActivityNet JSON), on the toy
suite, and on broken inputs (each a one-line UserError naming the file)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmark.errors import UserError
from benchmark.data.hmdb51 import load_hmdb51
from benchmark.data.kinetics import list_train_videos
from benchmark.data.ssv2 import load_ssv2
from benchmark.data.thumos import load_thumos
from benchmark.data.ucf101 import load_ucf101
from benchmark.data.video import write_video

FIXTURES = Path(__file__).parent / "fixtures" / "video"
_FRAMES = np.full((6, 16, 16, 3), 90, np.uint8)


def _fixture(name: str, tmp_path: Path, videos: list[str], fps: float = 25.0) -> Path:
    """Copy fixture ``name`` to ``tmp_path`` and write a tiny video at each relative path of ``videos``."""
    root = shutil.copytree(FIXTURES / name, tmp_path / name)
    for rel in videos:
        write_video(root / rel, _FRAMES, fps)
    return root


def _raises_naming(fn, needle: str | Path) -> str:
    with pytest.raises(UserError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and str(needle) in msg, msg
    return msg


# --- UCF101 ---

UCF_VIDEOS = ["UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "UCF-101/ApplyLipstick/v_ApplyLipstick_g08_c01.avi",
              "UCF-101/Archery/v_Archery_g08_c01.avi", "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
              "UCF-101/Archery/v_Archery_g01_c01.avi"]


def test_ucf101_fixture(tmp_path):
    root = _fixture("ucf101", tmp_path, UCF_VIDEOS)
    train, test, classes = load_ucf101(root, split=1)
    assert classes == ["ApplyEyeMakeup", "ApplyLipstick", "Archery"]  # CRLF stripped, 1-based → 0-based
    assert [(v.name, v.label) for v in train] == [("v_ApplyEyeMakeup_g08_c01", 0), ("v_ApplyLipstick_g08_c01", 1),
                                                  ("v_Archery_g08_c01", 2)]
    assert [(v.name, v.label) for v in test] == [("v_ApplyEyeMakeup_g01_c01", 0), ("v_Archery_g01_c01", 2)]
    assert test[1].path == root / "UCF-101" / "Archery" / "v_Archery_g01_c01.avi"


def test_ucf101_class_comes_from_folder_not_file_name(tmp_path):
    """The real quirk: class HandstandPushups, files v_HandStandPushups_*."""
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_bytes(b"1 HandstandPushups\r\n")
    (lists / "trainlist01.txt").write_bytes(b"HandstandPushups/v_HandStandPushups_g08_c01.avi 1\r\n")
    (lists / "testlist01.txt").write_bytes(b"HandstandPushups/v_HandStandPushups_g01_c01.avi\r\n")
    for g in ("08", "01"):
        write_video(tmp_path / "UCF-101" / "HandstandPushups" / f"v_HandStandPushups_g{g}_c01.avi", _FRAMES)
    train, test, _ = load_ucf101(tmp_path)
    assert train[0].label == 0 and test[0].label == 0


def test_ucf101_errors(tmp_path):
    _raises_naming(lambda: load_ucf101(tmp_path), tmp_path / "ucfTrainTestlist")
    root = _fixture("ucf101", tmp_path, UCF_VIDEOS[:4])  # one test video missing
    _raises_naming(lambda: load_ucf101(root), root / "UCF-101" / "Archery" / "v_Archery_g01_c01.avi")
    _raises_naming(lambda: load_ucf101(root, split=2), root / "ucfTrainTestlist" / "trainlist02.txt")
    lst = root / "ucfTrainTestlist" / "trainlist01.txt"
    lst.write_bytes(b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 3\r\n")  # label is not ApplyEyeMakeup's id
    _raises_naming(lambda: load_ucf101(root), lst)
    lst.write_bytes(b"\r\n")
    assert "empty" in _raises_naming(lambda: load_ucf101(root), lst)


def test_ucf101_toy(toy_root):
    for split in (1, 2, 3):
        train, test, classes = load_ucf101(toy_root / "UCF101", split)
        assert not {v.name for v in train} & {v.name for v in test}
        assert {v.label for v in train} == {v.label for v in test} == set(range(len(classes)))
        assert all(v.path.is_file() and v.path.suffix == ".avi" for v in train + test)


# --- HMDB51 ---

def test_hmdb51_fixture(tmp_path):
    root = _fixture("hmdb51", tmp_path, [
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1.avi",
        "cartwheel/(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi",
        "cartwheel/Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi"])
    train, test, classes = load_hmdb51(root, split=1)
    assert classes == ["brush_hair", "cartwheel"]
    assert [(v.name, v.label) for v in train] == [("April_09_brush_hair_u_nm_np1_ba_goo_0", 0),
                                                  ("Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8", 1)]
    assert [(v.name, v.label) for v in test] == [("April_09_brush_hair_u_nm_np1_ba_goo_1", 0),
                                                 ("(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0", 1)]
    # mark 0 (goo_2) is in neither subset, and its video need not exist


def test_hmdb51_errors(tmp_path):
    _raises_naming(lambda: load_hmdb51(tmp_path), tmp_path / "testTrainMulti_7030_splits")
    root = _fixture("hmdb51", tmp_path, ["brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi"])
    split = root / "testTrainMulti_7030_splits"
    msg = _raises_naming(lambda: load_hmdb51(root), "Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi")
    assert "cartwheel_test_split1.txt" in msg
    _raises_naming(lambda: load_hmdb51(root, split=2), split)
    (split / "cartwheel_test_split1.txt").write_text("x.avi 7 \n")
    _raises_naming(lambda: load_hmdb51(root), split / "cartwheel_test_split1.txt")
    (split / "cartwheel_test_split1.txt").write_text("")
    _raises_naming(lambda: load_hmdb51(root), split / "cartwheel_test_split1.txt")


def test_hmdb51_toy(toy_root):
    for split in (1, 2, 3):
        train, test, classes = load_hmdb51(toy_root / "HMDB51", split)
        assert not {v.name for v in train} & {v.name for v in test}
        assert {v.label for v in test} == set(range(len(classes)))
        per_class = len(train) // len(classes) + len(test) // len(classes)
        assert per_class < len(list((toy_root / "HMDB51" / classes[0]).glob("*.avi")))  # some marked 0


# --- Something-Something v2 ---

def test_ssv2_fixture(tmp_path):
    root = _fixture("ssv2", tmp_path, [f"20bn-something-something-v2/{i}.webm" for i in ("168029", "42326", "74225", "116154")])
    train, val, classes = load_ssv2(root)
    assert classes[0] == "Approaching something with your camera" and len(classes) == 6
    assert [(v.name, v.label) for v in train] == [("168029", 5), ("42326", 1)]
    assert [(v.name, v.label) for v in val] == [("74225", 2), ("116154", 0)]
    assert train[0].path.suffix == ".webm"


def test_ssv2_legacy_20bn_file_names(tmp_path):
    root = _fixture("ssv2", tmp_path, [f"20bn-something-something-v2/{i}.webm" for i in ("168029", "42326", "74225", "116154")])
    for name in ("labels", "train", "validation"):
        (root / "labels" / f"{name}.json").rename(root / f"something-something-v2-{name}.json")
    assert [v.label for v in load_ssv2(root)[0]] == [5, 1]


def test_ssv2_errors(tmp_path):
    _raises_naming(lambda: load_ssv2(tmp_path), tmp_path / "labels" / "labels.json")
    root = _fixture("ssv2", tmp_path, [f"20bn-something-something-v2/{i}.webm" for i in ("168029", "42326", "74225")])
    _raises_naming(lambda: load_ssv2(root), "116154.webm")
    train = root / "labels" / "train.json"
    text = train.read_text()
    train.write_text(text[: len(text) // 2])  # truncated download
    _raises_naming(lambda: load_ssv2(root), train)
    train.write_text(json.dumps([{"id": "1", "template": "Juggling [something]"}]))
    _raises_naming(lambda: load_ssv2(root), train)


def test_ssv2_toy_pairs_are_reversals(toy_root):
    train, val, classes = load_ssv2(toy_root / "SSv2")
    assert "Moving something from left to right" in classes and "Moving something from right to left" in classes
    assert np.bincount([v.label for v in train]).min() == np.bincount([v.label for v in train]).max()
    assert {v.label for v in val} == set(range(len(classes)))


# --- Kinetics-style training videos ---

def test_kinetics_folder_csv_and_lists(tmp_path, monkeypatch):
    root = tmp_path / "k400"
    for name in ("abcdefghijk_000010_000020", "lmnopqrstuv_000000_000010"):
        write_video(root / "train" / f"{name}.mp4", _FRAMES)
    frames = root / "frames" / "val" / "Zr6VEZQt9uQ_000014_000024"  # Co-Settle: one folder of frames per clip
    frames.mkdir(parents=True)
    for i in range(3):
        (frames / f"{i:05d}.jpg").write_bytes(b"jpg")
    assert list_train_videos(root) == [frames, root / "train" / "abcdefghijk_000010_000020.mp4",
                                       root / "train" / "lmnopqrstuv_000000_000010.mp4"]
    (root / "annotations").mkdir()
    csv = root / "annotations" / "train.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\nabseiling,abcdefghijk,10,20,train\n"
                   "abseiling,gone_from_yt,0,10,train\n")  # the second clip was deleted from YouTube: skipped
    assert list_train_videos(csv) == [root / "train" / "abcdefghijk_000010_000020.mp4"]
    cosettle = tmp_path / "lists" / "k400_valid_files.txt"  # paths relative to where Co-Settle is run
    cosettle.parent.mkdir()
    cosettle.write_text("k400/frames/val/Zr6VEZQt9uQ_000014_000024\n")
    monkeypatch.chdir(tmp_path)
    assert list_train_videos(cosettle) == [frames]
    mm = root / "train_list_videos.txt"  # mmaction2: "<path relative to the list> <label>"
    mm.write_text("train/abcdefghijk_000010_000020.mp4 0\n")
    assert list_train_videos(mm) == [root / "train" / "abcdefghijk_000010_000020.mp4"]
    mm.write_text("train/missing_000000_000010.mp4 0\n")
    _raises_naming(lambda: list_train_videos(mm), "missing_000000_000010.mp4")
    mm.write_text("\n")
    _raises_naming(lambda: list_train_videos(mm), mm)
    _raises_naming(lambda: list_train_videos(tmp_path / "nowhere"), tmp_path / "nowhere")


def test_kinetics_toy(toy_root):
    folder = list_train_videos(toy_root / "kinetics")
    assert folder == sorted(list_train_videos(toy_root / "kinetics" / "annotations" / "train.csv"))
    assert len(folder) >= 4 and all(p.suffix == ".mp4" for p in folder)


# --- THUMOS-14 ---

def test_thumos_fixture(tmp_path):
    root = _fixture("thumos", tmp_path, ["validation/video_validation_0000051.mp4",
                                         "TH14_test_set_mp4/video_test_0000004.mp4"], fps=10)
    test, classes = load_thumos(root, "test")
    assert classes == ["Billiards", "CricketBowling", "CricketShot"]  # the whole database, sorted
    (v,) = test
    assert v.name == "video_test_0000004" and v.fps == 30.0 and v.num_frames == len(_FRAMES)  # fps from the JSON
    assert [(s.start, s.end, s.label) for s in v.segments] == [(0.2, 1.1, 1), (1.2, 2.0, 2)]  # sorted by start
    val, _ = load_thumos(root / "annotations" / "thumos14.json", "Validation")
    assert val[0].segments[0].label == 0
    ann = root / "annotations" / "thumos14.json"
    data = json.loads(ann.read_text())
    del data["database"]["video_test_0000004"]["fps"]
    ann.write_text(json.dumps(data))
    assert load_thumos(root)[0][0].fps == pytest.approx(10.0)  # else the video's own rate


def test_thumos_errors(tmp_path):
    _raises_naming(lambda: load_thumos(tmp_path), tmp_path / "annotations" / "thumos14.json")
    root = _fixture("thumos", tmp_path, ["validation/video_validation_0000051.mp4"])
    _raises_naming(lambda: load_thumos(root), "video_test_0000004")
    _raises_naming(lambda: load_thumos(root, "training"), "training")
    ann = root / "annotations" / "thumos14.json"
    ann.write_text('{"database": {}}')
    _raises_naming(lambda: load_thumos(root), ann)


def test_thumos_toy(toy_root):
    test, classes = load_thumos(toy_root / "THUMOS", "test")
    val, _ = load_thumos(toy_root / "THUMOS", "validation")
    assert len(classes) >= 3 and test and val
    for v in test + val:
        assert v.segments and all(0 <= s.start < s.end <= v.num_frames / v.fps for s in v.segments)
        assert all(a.end <= b.start for a, b in zip(v.segments, v.segments[1:]))  # no overlap
