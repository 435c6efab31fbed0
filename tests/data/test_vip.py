"""VIP_Fine reader: a hand-made fixture in the release's layout, toy data, and bad inputs."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.errors import UserError
from benchmark.data.toy.dense import SIZES, generate_dense
from benchmark.data.vip import VIP_CLASSES, VIP_NUM_CLASSES, load_vip, read_parts

FIXTURE = Path(__file__).parent / "fixtures" / "dense" / "VIP"


@pytest.fixture()
def vip(tmp_path) -> Path:
    """A writable copy of the fixture's VIP_Fine folder."""
    return Path(shutil.copytree(FIXTURE / "VIP_Fine", tmp_path / "VIP_Fine"))


@pytest.fixture(scope="module")
def toy_vip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    generate_dense(root, np.random.default_rng(0), "small", datasets=("vip",))
    return root / "VIP"


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_class_list():
    assert VIP_NUM_CLASSES == len(VIP_CLASSES) == 20
    assert VIP_CLASSES[0] == "background" and VIP_CLASSES[13] == "face"


def test_fixture_videos_and_sparse_labels():
    videos = load_vip(FIXTURE)  # the folder that contains VIP_Fine is accepted too
    assert [v.name for v in videos] == ["videos1", "videos2"]
    v1, v2 = videos
    assert [p.name for p in v1.frames] == ["000000000001.jpg", "000000000002.jpg", "000000000003.jpg"]
    assert sorted(v1.labels) == [0, 2] and v1.labels[2].name == "000000000003.png"
    assert sorted(v2.labels) == [0, 1]
    parts = read_parts(v1.labels[0])
    assert parts.shape == (6, 8) and parts.dtype == np.uint8
    assert np.unique(parts).tolist() == [0, 2, 4, 13, 255]
    assert (parts == 13).sum() == 8 and parts[5, 0] == 255
    assert [v.name for v in load_vip(FIXTURE / "VIP_Fine")] == ["videos1", "videos2"]


def test_list_lines_may_be_paths(vip):
    (vip / "lists" / "val_videos.txt").write_text("/data/VIP_Fine/Images/videos2\n")
    assert [v.name for v in load_vip(vip)] == ["videos2"]


def test_colour_label_image(vip):
    path = vip / "Annotations" / "Category_ids" / "videos1" / "000000000003.png"
    Image.open(path).convert("RGB").save(path)
    msg = _error(read_parts, path)
    assert str(path) in msg and "'RGB'" in msg


def test_ids_outside_the_classes(vip):
    path = vip / "Annotations" / "Category_ids" / "videos2" / "000000000002.png"
    Image.fromarray(np.full((6, 8), 37, np.uint8)).save(path)
    msg = _error(read_parts, path)
    assert str(path) in msg and "[37]" in msg


def test_missing_first_annotation(vip):
    path = vip / "Annotations" / "Category_ids" / "videos1" / "000000000001.png"
    path.unlink()
    assert str(path) in _error(load_vip, vip)


def test_annotation_without_frame(vip):
    (vip / "Images" / "videos1" / "000000000003.jpg").unlink()
    msg = _error(load_vip, vip)
    assert "videos1/000000000003.png" in msg and "no frame" in msg


def test_label_size_differs_from_frame(vip):
    path = vip / "Annotations" / "Category_ids" / "videos2" / "000000000002.png"
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(path)
    assert str(path) in _error(load_vip, vip)


def test_missing_layout_and_lists(vip, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "VIP_Fine" in _error(load_vip, tmp_path / "empty")
    assert "lists/test_videos.txt" in _error(load_vip, vip, split="test")
    (vip / "lists" / "val_videos.txt").write_text("")
    assert "is empty" in _error(load_vip, vip)
    (vip / "lists" / "val_videos.txt").write_text("videos9\n")
    assert "Images/videos9" in _error(load_vip, vip)


def test_toy_vip(toy_vip):
    spec = SIZES["small"]
    videos = load_vip(toy_vip)
    assert len(videos) == spec.vip_videos
    for v in videos:
        assert len(v.frames) == spec.vip_frames
        assert sorted(v.labels) == list(range(0, spec.vip_frames, spec.vip_every))
        classes = set()
        for path in v.labels.values():
            parts = read_parts(path)
            assert parts.shape == spec.vip_hw
            classes |= set(np.unique(parts).tolist())
        # background, hair, upper-clothes, pants, face, both arms and both legs
        assert classes == {0, 2, 4, 8, 13, 14, 15, 16, 17}
