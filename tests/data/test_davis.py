"""DAVIS-2017 reader: a hand-made fixture in the release's exact layout, toy data, and every bad input."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.errors import UserError
from benchmark.data.davis import DAVIS_PALETTE, load_davis, read_frame, read_mask, write_mask
from benchmark.data.toy.dense import SIZES, generate_dense

FIXTURE = Path(__file__).parent / "fixtures" / "dense" / "DAVIS"


@pytest.fixture()
def davis(tmp_path) -> Path:
    """A writable copy of the fixture, for breaking it."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "DAVIS"))


@pytest.fixture(scope="module")
def toy_davis(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    generate_dense(root, np.random.default_rng(0), "small", datasets=("davis",))
    return root / "DAVIS"


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as e:
        fn(*args, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_palette_is_the_pascal_voc_colour_map():
    assert DAVIS_PALETTE.shape == (256, 3) and DAVIS_PALETTE.dtype == np.uint8
    assert DAVIS_PALETTE[:10].tolist() == [
        [0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128],
        [128, 0, 128], [0, 128, 128], [128, 128, 128], [64, 0, 0], [192, 0, 0],
    ]
    assert DAVIS_PALETTE[255].tolist() == [224, 224, 192]  # VOC's "void" colour
    assert len({tuple(c) for c in DAVIS_PALETTE.tolist()}) == 256


def test_fixture_sequences_frames_and_masks():
    seqs = load_davis(FIXTURE)
    assert [s.name for s in seqs] == ["bike-packing", "blackswan"]  # the order of val.txt
    bike, swan = seqs
    assert [p.name for p in swan.frames] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    assert [p.name for p in swan.annotations] == ["00000.png", "00001.png", "00002.png"]
    assert swan.fully_annotated and swan.object_ids() == [1] and bike.object_ids() == [1, 2]
    masks = swan.read_masks()
    assert masks.shape == (3, 8, 12) and masks.dtype == np.uint8
    for t in range(3):  # the square moves one pixel right per frame
        expected = np.zeros((8, 12), np.uint8)
        expected[2:6, 2 + t:6 + t] = 1
        np.testing.assert_array_equal(masks[t], expected)
    bike_masks = bike.read_masks()
    assert np.unique(bike_masks[2]).tolist() == [0, 1]  # object 2 has left: allowed
    assert (bike_masks[0] == 2).sum() == 12
    assert read_frame(swan.frames[0]).shape == (8, 12, 3)
    assert swan.read_frames().shape == (3, 8, 12, 3)


def test_fixture_pngs_carry_the_davis_palette():
    with Image.open(FIXTURE / "Annotations" / "480p" / "blackswan" / "00000.png") as im:
        assert im.mode == "P"
        assert im.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]


def test_select_sequences_and_unknown_name():
    assert [s.name for s in load_davis(FIXTURE, sequences=["blackswan"])] == ["blackswan"]
    msg = _error(load_davis, FIXTURE, sequences=["blackswann"])
    assert "'blackswann'" in msg and "did you mean 'blackswan'" in msg


def test_write_mask_round_trip(tmp_path):
    mask = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_mask(tmp_path / "a" / "00000.png", mask)
    with Image.open(tmp_path / "a" / "00000.png") as im:
        assert im.mode == "P"
        assert im.getpalette()[: 3 * 12] == DAVIS_PALETTE[:12].ravel().tolist()
    np.testing.assert_array_equal(read_mask(tmp_path / "a" / "00000.png"), mask)


def test_missing_annotation_frame(davis):
    (davis / "Annotations" / "480p" / "blackswan" / "00001.png").unlink()
    msg = _error(load_davis, davis)
    assert "blackswan/00001.png" in msg and "missing" in msg


def test_first_frame_only_is_the_test_dev_layout(davis):
    for t in (1, 2):
        (davis / "Annotations" / "480p" / "blackswan" / f"{t:05d}.png").unlink()
    swan = load_davis(davis, sequences=["blackswan"])[0]
    assert len(swan.annotations) == 1 and not swan.fully_annotated


def test_non_palette_png(davis):
    path = davis / "Annotations" / "480p" / "blackswan" / "00002.png"
    Image.open(path).convert("RGB").save(path)
    msg = _error(load_davis, davis)
    assert str(path) in msg and "palette" in msg
    assert str(path) in _error(read_mask, path)
    Image.open(path).convert("L").save(path)
    assert read_mask(path, require_palette=False).shape == (8, 12)  # a grey id map, allowed for predictions


def test_mask_size_differs_from_frame(davis):
    path = davis / "Annotations" / "480p" / "bike-packing" / "00001.png"
    write_mask(path, np.zeros((9, 12), np.uint8))
    msg = _error(load_davis, davis)
    assert str(path) in msg and "(12, 9)" in msg


def test_object_id_absent_from_first_frame(davis):
    path = davis / "Annotations" / "480p" / "blackswan" / "00002.png"
    mask = read_mask(path)
    mask[0, 0] = 3
    write_mask(path, mask)
    msg = _error(load_davis(davis, sequences=["blackswan"])[0].read_masks)
    assert str(path) in msg and "[3]" in msg


def test_missing_layout_and_lists(davis, tmp_path):
    assert "JPEGImages/<res>" in _error(load_davis, tmp_path / "nowhere")
    msg = _error(load_davis, davis, split="train")
    assert "ImageSets/2017/train.txt" in msg and "JPEGImages/<res>" in msg
    (davis / "ImageSets" / "2017" / "val.txt").write_text("\n")
    assert "is empty" in _error(load_davis, davis)
    (davis / "ImageSets" / "2017" / "val.txt").write_text("blackswan\ndog\n")
    assert "JPEGImages/480p/dog" in _error(load_davis, davis)


def test_corrupt_annotation(davis):
    path = davis / "Annotations" / "480p" / "blackswan" / "00001.png"
    path.write_bytes(b"not a png")
    assert str(path) in _error(load_davis, davis)


def test_toy_davis_reads_back_exact_masks(toy_davis):
    spec = SIZES["small"]
    seqs = load_davis(toy_davis)
    assert len(seqs) == spec.davis_sequences
    assert sorted({len(s.object_ids()) for s in seqs}) == [1, 2, 3]
    for s in seqs:
        masks = s.read_masks()
        assert masks.shape == (spec.davis_frames, *spec.davis_hw)
        for k in s.object_ids():
            areas = (masks == k).sum(axis=(1, 2))
            assert areas[0] >= 200, "every object is clearly visible in the reference frame"
            # objects travel: copying the first mask to the last frame overlaps it poorly
            first, last = masks[0] == k, masks[-1] == k
            assert (first & last).sum() / (first | last).sum() < 0.5
