"""JHMDB reader: a hand-made fixture with real-layout joint_positions.mat files, toy data, bad inputs."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from benchmark.errors import UserError
from benchmark.data.jhmdb import JHMDB_JOINTS, load_jhmdb, read_keypoints, read_split
from benchmark.data.toy.dense import JHMDB_ACTIONS, SIZES, generate_dense

FIXTURE = Path(__file__).parent / "fixtures" / "dense" / "JHMDB"
TEST_CLIP = "April_09_brush_hair_u_nm_np1_ba_goo_0"
TRAIN_CLIP = "Brushing_my_long_hair_brush_hair_u_nm_np1_fr_goo_0"


@pytest.fixture()
def jhmdb(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "JHMDB"))


@pytest.fixture(scope="module")
def toy_jhmdb(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    generate_dense(root, np.random.default_rng(0), "small", datasets=("jhmdb",))
    return root / "JHMDB"


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_joint_names():
    assert len(JHMDB_JOINTS) == 15
    assert JHMDB_JOINTS[:3] == ("neck", "belly", "face") and JHMDB_JOINTS[-1] == "left ankle"


def test_fixture_mat_is_real_layout():
    mat = scipy.io.loadmat(str(FIXTURE / "joint_positions" / "brush_hair" / TEST_CLIP / "joint_positions.mat"))
    assert mat["pos_img"].shape == (2, 15, 3) and mat["pos_world"].shape == (2, 15, 3)
    assert mat["scale"].shape == (1, 3) and mat["viewpoint"].tolist() == ["E"]


def test_fixture_test_and_train_subsets_with_zero_based_keypoints():
    (clip,) = load_jhmdb(FIXTURE, split=1, subset="test")
    assert (clip.name, clip.action) == (TEST_CLIP, "brush_hair")
    assert [p.name for p in clip.frames] == ["00001.png", "00002.png", "00003.png"]
    assert clip.keypoints.shape == (3, 15, 2) and clip.keypoints.dtype == np.float32
    # the file holds x = 1 + j + t, y = 2 + j (1-based); 0-based that is (j + t, 1 + j)
    j, t = np.meshgrid(np.arange(15), np.arange(3))
    np.testing.assert_array_equal(clip.keypoints[..., 0], j + t)
    np.testing.assert_array_equal(clip.keypoints[..., 1], 1 + j)
    (train,) = load_jhmdb(FIXTURE, split=1, subset="train")
    assert train.name == TRAIN_CLIP
    np.testing.assert_array_equal(train.keypoints[..., 0], j + t + 10)


def test_read_split():
    assert read_split(FIXTURE / "splits" / "brush_hair_test_split1.txt") == [(TEST_CLIP, "2"), (TRAIN_CLIP, "1")]


def test_empty_and_malformed_split_files(jhmdb):
    path = jhmdb / "splits" / "brush_hair_test_split1.txt"
    path.write_text("\n")
    msg = _error(load_jhmdb, jhmdb)
    assert str(path) in msg and "empty" in msg
    path.write_text(f"{TEST_CLIP}.avi test\n")
    msg = _error(load_jhmdb, jhmdb)
    assert str(path) in msg and "line 1" in msg


def test_mat_without_pos_img(jhmdb):
    path = jhmdb / "joint_positions" / "brush_hair" / TEST_CLIP / "joint_positions.mat"
    scipy.io.savemat(str(path), {"pos_world": np.zeros((2, 15, 3))})
    msg = _error(load_jhmdb, jhmdb)
    assert str(path) in msg and "pos_img" in msg and "pos_world" in msg


def test_bad_shape_and_corrupt_mat(jhmdb):
    path = jhmdb / "joint_positions" / "brush_hair" / TEST_CLIP / "joint_positions.mat"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    assert str(path) in _error(read_keypoints, path)
    path.write_bytes(b"\x00" * 10)
    assert str(path) in _error(read_keypoints, path)
    scipy.io.savemat(str(path), {"pos_img": np.zeros((2, 13, 3))})
    assert "2 × 15 × T" in _error(read_keypoints, path)


def test_frame_count_mismatch_and_missing_clip(jhmdb):
    (jhmdb / "Rename_Images" / "brush_hair" / TEST_CLIP / "00003.png").unlink()
    msg = _error(load_jhmdb, jhmdb)
    assert "3 frames" in msg and "has 2" in msg
    shutil.rmtree(jhmdb / "Rename_Images" / "brush_hair" / TEST_CLIP)
    assert f"Rename_Images/brush_hair/{TEST_CLIP}" in _error(load_jhmdb, jhmdb)


def test_missing_layout_and_bad_arguments(jhmdb, tmp_path):
    assert "splits/<class>_test_split1.txt" in _error(load_jhmdb, tmp_path)
    assert "_test_split2.txt" in _error(load_jhmdb, jhmdb, split=2)
    assert "use 1, 2 or 3" in _error(load_jhmdb, jhmdb, split=4)
    assert "'val'" in _error(load_jhmdb, jhmdb, subset="val")


def test_toy_jhmdb(toy_jhmdb):
    spec = SIZES["small"]
    clips = load_jhmdb(toy_jhmdb)
    assert sorted({c.action for c in clips}) == sorted(JHMDB_ACTIONS)
    assert len(clips) == spec.jhmdb_test_per_class * len(JHMDB_ACTIONS)
    assert len(load_jhmdb(toy_jhmdb, subset="train")) == len(JHMDB_ACTIONS)
    H, W = spec.jhmdb_hw
    for c in clips:
        kp = c.keypoints
        assert kp.shape == (spec.jhmdb_frames, 15, 2) and len(c.frames) == spec.jhmdb_frames
        assert (kp[..., 0] > -W * 0.1).all() and (kp[..., 0] < W * 1.1).all()
        assert (kp[..., 1] >= 0).all() and (kp[..., 1] < H).all()
        neck, face, ankles = kp[:, 0], kp[:, 2], kp[:, 13:15]
        assert (face[:, 1] < neck[:, 1]).all() and (ankles[..., 1] > neck[:, None, 1]).all()
        # joints move: a static guess is off by several pixels on average
        assert np.linalg.norm(kp[-1] - kp[0], axis=-1).mean() > 10
