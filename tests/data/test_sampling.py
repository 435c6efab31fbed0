"""The shared clip sampler reproduces mmaction2's SampleFrames/DenseSampleFrames, Co-Settle's frame
pairs and AdViSe's playback-rate clips index for index (expected values worked out from their code)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.data.sampling import clip_indices, frame_pair, frame_pair_with_previous, rate_clip


def test_uniform_matches_sampleframes_test_mode():
    # 100 frames, 8-frame clips at stride 2: a clip spans 15 frames, max offset 85, 3 clips at 0, 42.5→42, 85
    got = clip_indices(100, 8, 2, "uniform", num_clips=3)
    assert got.shape == (3, 8) and got.dtype == np.int64
    np.testing.assert_array_equal(got[:, 0], [0, 42, 85])
    np.testing.assert_array_equal(got[1], 42 + 2 * np.arange(8))
    # one clip is centred: offset 85 // 2
    np.testing.assert_array_equal(clip_indices(100, 8, 2), (42 + 2 * np.arange(8))[None])


def test_short_video_loops_or_repeats_last():
    np.testing.assert_array_equal(clip_indices(10, 8, 2)[0], [0, 2, 4, 6, 8, 0, 2, 4])
    np.testing.assert_array_equal(clip_indices(10, 8, 2, out_of_bound="repeat_last")[0], [0, 2, 4, 6, 8, 8, 8, 8])


def test_random_mode_draws_one_offset_per_segment():
    # avg_interval = (100 - 8 + 1) // 4 = 23: clip i starts in [23 i, 23 i + 23)
    starts = np.stack([clip_indices(100, 8, 1, "random", 4, np.random.default_rng(s))[:, 0] for s in range(200)])
    for i in range(4):
        assert starts[:, i].min() >= 23 * i and starts[:, i].max() < 23 * (i + 1)
        assert len(np.unique(starts[:, i])) > 15  # really random, not a fixed offset
    a = clip_indices(100, 8, 1, "random", 4, np.random.default_rng(7))
    np.testing.assert_array_equal(a, clip_indices(100, 8, 1, "random", 4, np.random.default_rng(7)))
    with pytest.raises(ValueError, match="rng"):
        clip_indices(100, 8, 1, "random")


def test_random_mode_on_a_short_video_samples_sorted_starts():
    # 20 frames, 4 clips of 8: avg_interval = 13 // 4 = 3 > 0; 6 clips: 13 // 6 = 2; 16 clips: 0 → sorted draws
    got = clip_indices(20, 8, 1, "random", 16, np.random.default_rng(0))
    assert np.all(np.diff(got[:, 0]) >= 0) and got[:, 0].max() <= 12


def test_dense_packs_clips_in_a_64_frame_window():
    # DenseSampleFrames: interval 64 // 4 = 16; test mode starts evenly in [0, 200 - 64]
    np.testing.assert_array_equal(clip_indices(200, 4, 1, "dense", 4)[:, 0], [0, 16, 32, 48])
    ten = clip_indices(200, 4, 1, "dense", 4, num_sample_positions=10)
    assert ten.shape == (40, 4)
    np.testing.assert_array_equal(ten[::4, 0], np.linspace(0, 136, 10, dtype=int))
    rnd = clip_indices(200, 4, 1, "dense_random", 4, np.random.default_rng(1))
    np.testing.assert_array_equal(np.diff(rnd[:, 0]), [16, 16, 16])
    assert 0 <= rnd[0, 0] < 136


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="unknown sampling mode"):
        clip_indices(10, 4, 1, "middle")
    with pytest.raises(ValueError):
        clip_indices(0, 4)


def test_frame_pair_follows_cosettle_gap():
    # gap = int(0.15 * 100) = 15; t in [1, 85)
    pairs = np.array([frame_pair(100, 0.15, np.random.default_rng(s)) for s in range(300)])
    np.testing.assert_array_equal(pairs[:, 1] - pairs[:, 0], 15)
    assert pairs[:, 0].min() >= 1 and pairs[:, 0].max() <= 84 and pairs[:, 1].max() <= 99
    # too short for a gap of 2 (int(0.15 * 10) = 1): two independent frames
    short = np.array([frame_pair(10, 0.15, np.random.default_rng(s)) for s in range(100)])
    assert len(np.unique(short[:, 1] - short[:, 0])) > 3


def test_frame_pair_with_previous_adds_predecessors():
    quads = np.array([frame_pair_with_previous(100, 0.15, np.random.default_rng(s)) for s in range(100)])
    np.testing.assert_array_equal(quads[:, 1] - quads[:, 0], 1)
    np.testing.assert_array_equal(quads[:, 3] - quads[:, 1], 15)
    np.testing.assert_array_equal(quads[:, 3] - quads[:, 2], 1)
    a, b, c, d = frame_pair_with_previous(4, 0.15, np.random.default_rng(0))
    assert a == b and c == d


@pytest.mark.parametrize("rate", [1, 2, 4, 8])
def test_rate_clip_steps_by_stride_times_rate(rate):
    idx = rate_clip(1000, 8, 2, rate, np.random.default_rng(rate), jitter=0.0)
    assert idx.shape == (8,)
    np.testing.assert_array_equal(np.diff(idx) % 1000, 2 * rate)


def test_rate_clip_jitter_wraps_and_reverses():
    n = 50
    for s in range(50):
        idx = rate_clip(n, 8, 2, 8, np.random.default_rng(s), jitter=0.2)
        assert idx.min() >= 0 and idx.max() < n
        steps = np.diff(np.unwrap(idx, period=n))  # undo the wrap-around
        assert 16 * 0.8 - 1 <= steps.mean() <= 16 * 1.2 + 1
    fwd = rate_clip(n, 8, 2, 2, np.random.default_rng(3))
    np.testing.assert_array_equal(rate_clip(n, 8, 2, -2, np.random.default_rng(3)), fwd[::-1])
