"""A catalogue of user mistakes, each run through `bench run` on real (corrupted) data.

Every case must end with exit code 2, exactly one line on stderr that names the offending file or
value *and* says what to do, and no result file. The data are copies of the toy suite's folders
(``toy_root``) with one thing broken. stderr is captured at the file-descriptor level (``capfd``),
so noise printed by C libraries (FFmpeg, decord) counts against the one-line rule too.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
from PIL import Image

from benchmark.cli import main
from benchmark.data.davis import write_mask
from benchmark.data.toy.video import SIZES

from tests.bad_input_cases import (  # noqa: F401  (the checkpoint cases register themselves on import)
    CASES, REPO, RUN, TINY_TRADEOFF, case, code_checkpoint, copy_dataset, davis, jhmdb, tiny_vit_state, two_clips,
    with_weights,
)


@case
def data_root_missing(tmp, toy):
    return ["--tasks", "tradeoff", "--data-root", str(tmp / "nope")], [str(tmp / "nope"), "pass the folder"]


@case
def davis_without_resolution_level(tmp, toy):
    root, args = davis(toy, tmp)
    for res_dir in ("JPEGImages", "Annotations"):  # <root>/JPEGImages/<seq> instead of .../480p/<seq>
        for seq in (root / res_dir / "480p").iterdir():
            seq.rename(root / res_dir / seq.name)
        (root / res_dir / "480p").rmdir()
    return args, [str(root / "JPEGImages" / "480p" / "toy-00"), "expected the DAVIS-2017 layout"]


@case
def ucf101_videos_not_in_class_folders(tmp, toy):
    root = copy_dataset(toy, tmp, "UCF101")
    for video in list((root / "UCF-101").rglob("*.avi")):
        video.rename(root / "UCF-101" / video.name)
    first_train = SIZES["small"].groups // 3 + 1  # split 1 tests the first third of the groups
    return ["--tasks", "ucf101_cls", "--data-root", str(tmp / "data")], [f"v_Bouncing_g{first_train:02d}_c01.avi",
                                                                         "expected UCF101 as distributed"]


@case
def zero_byte_video(tmp, toy):
    bad = two_clips(toy, tmp) / "a_empty.mp4"
    bad.touch()
    return ["--tasks", "tradeoff", "--data-root", str(tmp / "data"), *TINY_TRADEOFF], [str(bad), "re-download or remove it"]


@case
def truncated_video(tmp, toy):
    bad = two_clips(toy, tmp) / "a_truncated.mp4"
    src = toy / "clips" / "clip_002.mp4"
    bad.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    return ["--tasks", "tradeoff", "--data-root", str(tmp / "data"), *TINY_TRADEOFF], [str(bad), "re-encode or remove it"]


@case
def text_file_as_video(tmp, toy):
    bad = two_clips(toy, tmp) / "a_notes.mp4"
    bad.write_text("this is not a video\n")
    return ["--tasks", "tradeoff", "--data-root", str(tmp / "data"), *TINY_TRADEOFF], [str(bad), "re-encode or remove it"]


@case
def checkpoint_in_another_layout(tmp, toy):
    import torch

    path = tmp / "mae.pth"
    torch.save({"state_dict": tiny_vit_state()}, path)
    return with_weights(path), [str(path), "not in the MAE layout", "pass the authors' released file"]


@case
def truncated_frame(tmp, toy):
    root, args = davis(toy, tmp)
    frame = root / "JPEGImages/480p/toy-00/00003.jpg"
    frame.write_bytes(frame.read_bytes()[: frame.stat().st_size // 2])
    return args, [str(frame), "replace it"]


@case
def text_file_as_frame(tmp, toy):
    root, args = davis(toy, tmp)
    frame = root / "JPEGImages/480p/toy-01/00000.jpg"
    frame.write_text("this is not an image\n")
    return args, [str(frame), "replace it"]


@case
def mask_without_palette(tmp, toy):
    root, args = davis(toy, tmp)
    mask = root / "Annotations/480p/toy-00/00000.png"
    Image.open(mask).convert("RGB").save(mask)
    return args, [str(mask), "re-save it as mode 'P'"]


@case
def mask_with_unknown_object_id(tmp, toy):
    root, args = davis(toy, tmp)
    mask = root / "Annotations/480p/toy-00/00005.png"
    ids = np.array(Image.open(mask))
    ids[:8, :8] = 9  # an object the first frame does not have
    write_mask(mask, ids)
    return args, [str(mask), "[9]", "fix the ids in this file"]


@case
def mask_size_differs_from_frame(tmp, toy):
    root, args = davis(toy, tmp)
    mask = root / "Annotations/480p/toy-01/00004.png"
    write_mask(mask, np.array(Image.open(mask).resize((100, 60), Image.NEAREST)))
    return args, [str(mask), "(100, 60)", "use the annotations of the same resolution"]


@case
def truncated_mask(tmp, toy):
    root, args = davis(toy, tmp)
    mask = root / "Annotations/480p/toy-00/00006.png"
    mask.write_bytes(mask.read_bytes()[: mask.stat().st_size * 2 // 3])
    return args, [str(mask), "replace it"]


@case
def empty_split_file(tmp, toy):
    root, args = davis(toy, tmp)
    split = root / "ImageSets/2017/val.txt"
    split.write_text("\n")
    return args, [str(split), "one sequence per line"]


@case
def malformed_split_line(tmp, toy):
    root, args = jhmdb(toy, tmp)
    split = root / "splits/walk_test_split1.txt"
    split.write_text("toy_walk_0.avi test\n")
    return args, [str(split), "line 1", "expected '<video>.avi 1' (train)"]


@case
def mat_without_pos_img(tmp, toy):
    root, args = jhmdb(toy, tmp)
    mat = root / "joint_positions/walk/toy_walk_0/joint_positions.mat"
    scipy.io.savemat(mat, {"pos_world": np.zeros((2, 15, 12))})
    return args, [str(mat), "'pos_img'", "use JHMDB's joint_positions.mat"]


@case
def list_names_class_missing_from_class_index(tmp, toy):
    root = copy_dataset(toy, tmp, "UCF101")
    listing = root / "ucfTrainTestlist/testlist01.txt"
    listing.write_text("Juggling/v_Juggling_g01_c01.avi\n" + listing.read_text())
    return ["--tasks", "ucf101_cls", "--data-root", str(tmp / "data")], [str(listing), "Juggling", "in classInd.txt"]


@case
def listed_video_missing(tmp, toy):
    root = copy_dataset(toy, tmp, "HMDB51")
    gone = max((root / "zigzag").glob("*.avi"))  # listed, and not the first video (the layout probe)
    gone.unlink()
    return ["--tasks", "hmdb51_cls", "--data-root", str(tmp / "data")], [str(gone), "expected HMDB51 as distributed"]


@case
def data_item_without_folder(tmp, toy):
    return ["--tasks", "tradeoff", "--data", "clips"], ["--data 'clips'", "must look like DATASET=DIR"]


@case
def data_item_unknown_dataset(tmp, toy):
    folder = two_clips(toy, tmp)
    return ["--tasks", "tradeoff", "--data", f"clip={folder}"], ["'clip'", "did you mean 'clips'"]


# --- names, options and config files ------------------------------------------------------------

@case
def unknown_backbone(tmp, toy):
    return ["--backbone", "efficientnet_lite", "--tasks", "tradeoff"], ["'efficientnet_lite'", "did you mean 'efficientnet_lite0'"]


@case
def unknown_suite(tmp, toy):
    return ["--suite", "tyo"], ["'tyo'", "did you mean 'toy'"]


@case
def unknown_override_section(tmp, toy):
    return ["--tasks", "tradeoff", "--set", "tradof.gamma=1"], ["'tradof'", "did you mean 'tradeoff'"]


@case
def set_without_key(tmp, toy):
    return ["--tasks", "tradeoff", "--set", "tradeoff=3"], ["'tradeoff=3'", "must look like SECTION.KEY=VALUE"]


@case
def seeds_not_integers(tmp, toy):
    return ["--tasks", "tradeoff", "--seeds", "0,one"], ["'0,one'", "comma-separated integers"]


@case
def config_file_unknown_key(tmp, toy):
    cfg = tmp / "cfg.yaml"
    cfg.write_text("tradeoff:\n  num_frame: 8\n")
    return ["--tasks", "tradeoff", "--config", str(cfg)], ["'num_frame'", "valid keys: batch_size"]


@case
def config_file_wrong_type(tmp, toy):
    cfg = tmp / "cfg.yaml"
    cfg.write_text("tradeoff:\n  percentiles: 95\n")
    return ["--tasks", "tradeoff", "--config", str(cfg)], ["percentiles must be a list", "got 95"]


@case
def config_file_not_yaml(tmp, toy):
    cfg = tmp / "cfg.yaml"
    cfg.write_text("tradeoff: {crop: 64\n")
    return ["--tasks", "tradeoff", "--config", str(cfg)], [str(cfg), "fix its syntax"]


@case
def config_file_without_sections(tmp, toy):
    cfg = tmp / "cfg.yaml"
    cfg.write_text("crop: 64\n")
    return ["--tasks", "tradeoff", "--config", str(cfg)], [str(cfg), "must map sections"]


@case
def plugin_file_missing(tmp, toy):
    return ["--tasks", "tradeoff", "--plugin", str(tmp / "mine.py")], [str(tmp / "mine.py"), "pass the path of a .py file"]


@case
def train_data_missing(tmp, toy):
    return ["--tasks", "tradeoff", "--train-data", str(tmp / "kin")], [str(tmp / "kin"), "unlabelled training videos"]


def test_the_catalogue_has_at_least_55_distinct_cases():
    assert len(CASES) >= 55, sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(name, toy_root, tmp_path, capfd, monkeypatch):
    if name == "results_disk_full":
        def disk_full(fd: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "fsync", disk_full)
    if name == "slurm_not_installed":
        monkeypatch.setenv("PATH", str(tmp_path))
    args, needles = CASES[name](tmp_path, toy_root)
    results = tmp_path / "res"
    capfd.readouterr()
    code = main([*RUN, "--results", str(results), *args])
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    written = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or p.match("seed*.json")]
    assert written == [], written


def test_pickled_code_is_refused_in_a_real_process(tmp_path):
    """The real exit code and stderr of `bench run`, and proof the checkpoint's code never ran."""
    path, marker = code_checkpoint(tmp_path)
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", *RUN, *with_weights(path), "--data-root", str(tmp_path),
                          "--results", str(tmp_path / "res")],
                         check=False, cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "weights_only" in out.stderr and str(path) in out.stderr, out.stderr
    assert not marker.exists()
    assert not (tmp_path / "res").exists()


def test_corrupt_result_is_reported_recomputed_and_tables_still_render(toy_root, tmp_path, capfd):
    """A half-written (e.g. copied from a crashed node) record is named, ignored and recomputed."""
    two_clips(toy_root, tmp_path)
    res = tmp_path / "res"
    argv = [*RUN, "--tasks", "tradeoff", "--data-root", str(tmp_path / "data"), "--results", str(res), *TINY_TRADEOFF,
            "--seeds", "0,1"]
    assert main(argv) == 0
    (record,) = res.glob("frozen/efficientnet_lite0/tradeoff/*/seed0.json")
    good = json.loads(record.read_text())
    record.write_text(record.read_text()[:200])
    capfd.readouterr()

    assert main(["table", "--results", str(res)]) == 0  # the table survives on the intact seed
    out = capfd.readouterr()
    assert f"warning: result {record} is corrupt" in out.err and "efficientnet_lite0" in out.out

    assert main(argv) == 0
    err = capfd.readouterr().err
    assert f"warning: result {record} is corrupt; it is ignored and will be recomputed" in err
    assert "tradeoff (seed 1): already present" in err  # only the broken record is redone
    again = json.loads(record.read_text())
    assert again["metrics"] == good["metrics"] and again["config_hash"] == good["config_hash"]
    assert again["provenance"]["started"] != good["provenance"]["started"]  # really recomputed
    assert main(["table", "--results", str(res)]) == 0
    assert "efficientnet_lite0" in capfd.readouterr().out
