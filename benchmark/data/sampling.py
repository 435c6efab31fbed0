"""The one clip sampler every task and method uses: frame indices, never frames.

Three published samplers are reproduced index for index, so a result here means what it means in
the paper it comes from:

* :func:`clip_indices` — mmaction2's ``SampleFrames`` (``mode="random"`` is its train mode,
  ``"uniform"`` its ``test_mode=True``) and ``DenseSampleFrames`` (``"dense"`` test mode,
  ``"dense_random"`` train mode), ``out_of_bound_opt="loop"`` / ``"repeat_last"``
  (mmaction2 1.x ``mmaction/datasets/transforms/loading.py``). mmaction2 itself is not imported:
  its PyPI release does not import cleanly with this project's stack (see shared/README.md), and
  these functions take a ``numpy.random.Generator`` instead of the global NumPy state so that a run
  is reproducible from its seed.
* :func:`frame_pair` / :func:`frame_pair_with_previous` — Co-Settle's ``sample_two_frames`` and
  ``sample_two_frames_tuple`` (``util/video/video_utils.py``): two frames ``gap = int(gap_ratio·n)``
  apart (``--clip_gap 0.15`` in ``scripts/train.sh``), the second variant adding each frame's
  predecessor for the adapter (``--use_adapter``).
* :func:`rate_clip` — AdViSe's playback-rate clip (``SpeedStampsGenerator.gen_stamps`` in
  ``datasets/sampling.py`` of advise-video-ssl): a clip spanning ``num_frames·stride·rate·(1±jitter)``
  frames from a random start, wrapped around the video end, reversed for negative rates.
"""
from __future__ import annotations

import numpy as np

MODES = ("uniform", "random", "dense", "dense_random")


def _need_rng(rng: np.random.Generator | None, what: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"{what} is random: pass rng=np.random.default_rng(seed)")
    return rng


def _train_offsets(n: int, num_frames: int, stride: int, num_clips: int, rng: np.random.Generator) -> np.ndarray:
    """``SampleFrames._get_train_clips`` (``keep_tail_frames=False``): one random offset per segment."""
    ori_clip_len = num_frames * stride
    avg_interval = (n - ori_clip_len + 1) // num_clips
    if avg_interval > 0:
        return np.arange(num_clips) * avg_interval + rng.integers(avg_interval, size=num_clips)
    if n > max(num_clips, ori_clip_len):
        return np.sort(rng.integers(n - ori_clip_len + 1, size=num_clips))
    if avg_interval == 0:
        ratio = (n - ori_clip_len + 1.0) / num_clips
        return np.around(np.arange(num_clips) * ratio)
    return np.zeros(num_clips, dtype=np.int64)


def _test_offsets(n: int, num_frames: int, stride: int, num_clips: int) -> np.ndarray:
    """``SampleFrames._get_test_clips``: clips evenly spread from the first to the last frame."""
    ori_clip_len = (num_frames - 1) * stride + 1
    max_offset = max(n - ori_clip_len, 0)
    if num_clips > 1:
        return np.round(np.arange(num_clips) * (max_offset / float(num_clips - 1)))
    return np.array([max_offset // 2])


def _dense_offsets(n: int, num_clips: int, sample_range: int, num_sample_positions: int,
                   rng: np.random.Generator | None) -> np.ndarray:
    """``DenseSampleFrames``: clips packed in a ``sample_range`` window (random start, or evenly
    spaced starts in test mode, ``num_sample_positions`` windows)."""
    sample_position = max(1, 1 + n - sample_range)
    base = np.arange(num_clips) * (sample_range // num_clips)
    if rng is not None:
        start = 0 if sample_position == 1 else int(rng.integers(0, sample_position - 1))
        return (base + start) % n
    starts = np.linspace(0, sample_position - 1, num=num_sample_positions, dtype=int)
    return np.concatenate([(base + s) % n for s in starts])


def clip_indices(num_video_frames: int, num_frames: int, stride: int = 1, mode: str = "uniform",
                 num_clips: int = 1, rng: np.random.Generator | None = None, *,
                 sample_range: int = 64, num_sample_positions: int = 1,
                 out_of_bound: str = "loop") -> np.ndarray:
    """Frame indices of ``num_clips`` clips of ``num_frames`` frames, ``stride`` apart.

    Args:
        num_video_frames: frames in the video.
        num_frames: frames per clip (mmaction2's ``clip_len``).
        stride: gap between sampled frames (``frame_interval``).
        mode: ``"uniform"`` (deterministic, evaluation), ``"random"`` (training, needs ``rng``),
            ``"dense"`` (deterministic dense windows) or ``"dense_random"`` (needs ``rng``).
        num_clips: clips per video.
        rng: the generator random modes draw from.
        sample_range: dense modes: length of the window the clips are packed in (mmaction2: 64).
        num_sample_positions: ``"dense"``: number of evenly spaced windows; mmaction2 defaults to 10
            for multi-view testing, here 1 so that the result has ``num_clips`` rows unless asked.
        out_of_bound: ``"loop"`` wraps indices past the end (mmaction2's default) and
            ``"repeat_last"`` repeats the clip's last valid frame.

    Returns:
        int64 array ``(num_clips, num_frames)`` (``(num_clips·num_sample_positions, num_frames)`` for
        ``"dense"``), every index in ``[0, num_video_frames)``.
    """
    if num_video_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_video_frames}")
    if num_frames < 1 or stride < 1 or num_clips < 1:
        raise ValueError(f"num_frames, stride and num_clips must be >= 1, got {num_frames}, {stride}, {num_clips}")
    n = num_video_frames
    if mode == "uniform":
        offsets = _test_offsets(n, num_frames, stride, num_clips)
    elif mode == "random":
        offsets = _train_offsets(n, num_frames, stride, num_clips, _need_rng(rng, "mode 'random'"))
    elif mode == "dense":
        offsets = _dense_offsets(n, num_clips, sample_range, num_sample_positions, None)
    elif mode == "dense_random":
        offsets = _dense_offsets(n, num_clips, sample_range, 1, _need_rng(rng, "mode 'dense_random'"))
    else:
        raise ValueError(f"unknown sampling mode {mode!r}: use one of {', '.join(MODES)}")
    inds = np.asarray(offsets, dtype=np.int64)[:, None] + np.arange(num_frames, dtype=np.int64)[None, :] * stride
    if out_of_bound == "loop":
        return np.mod(inds, n)
    if out_of_bound == "repeat_last":
        safe = inds < n
        last = np.max(np.where(safe, inds, 0), axis=1, keepdims=True)
        return np.where(safe, inds, last)
    raise ValueError(f"unknown out_of_bound {out_of_bound!r}: use 'loop' or 'repeat_last'")


def frame_pair(num_video_frames: int, gap_ratio: float, rng: np.random.Generator) -> tuple[int, int]:
    """Co-Settle's frame pair ``(t, t + gap)`` with ``gap = int(gap_ratio · n)``.

    As in ``sample_two_frames``: ``t`` is drawn from ``[1, n - gap)`` (the first frame is never
    picked); a video too short for a gap of at least 2 frames (``n <= 2`` or ``gap <= 1``) gives two
    independent uniform frames instead. Deviation: where ``n - gap <= 1`` (``gap_ratio`` near 1) the
    original crashes; here the pair is ``(0, gap)``.
    """
    n = num_video_frames
    gap = int(gap_ratio * n)
    if n <= 2 or gap <= 1:
        return int(rng.integers(0, n)), int(rng.integers(0, n))
    if n - gap <= 1:
        return 0, min(gap, n - 1)
    t = int(rng.integers(1, n - gap))
    return t, t + gap


def frame_pair_with_previous(num_video_frames: int, gap_ratio: float,
                             rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Co-Settle's adapter sampling ``(t-1, t, t+gap-1, t+gap)`` (``sample_two_frames_tuple``).

    The adapter sees each frame with its predecessor. A video with ``n <= 4`` or ``gap < 1`` gives
    ``(a, a, b, b)`` for two independent uniform frames, as the original does.
    """
    n = num_video_frames
    gap = int(gap_ratio * n)
    if n <= 4 or gap < 1:
        a, b = int(rng.integers(0, n)), int(rng.integers(0, n))
        return a, a, b, b
    t = int(rng.integers(1, max(2, n - gap)))
    return max(t - 1, 0), t, t + gap - 1, min(t + gap, n - 1)


def rate_clip(num_video_frames: int, num_frames: int, stride: int, rate: float,
              rng: np.random.Generator, jitter: float = 0.2) -> np.ndarray:
    """AdViSe's playback-rate clip: ``num_frames`` indices at ``stride·rate·(1+U(-jitter, jitter))``.

    The clip starts at a uniform frame of the video, spans ``num_frames·stride·|rate|·jit`` frames
    (``np.linspace(..., endpoint=False)`` floored to integers) and wraps around the end (``mod n``),
    so every rate fits every video; a negative ``rate`` reverses the clip. AdViSe draws ``rate`` from
    {1, 2, 4, 8} with ``jitter=0.2`` and labels the clip with the rate's index.

    Returns:
        int64 array ``(num_frames,)``.
    """
    n = num_video_frames
    jit = 1.0 + float(rng.uniform(-jitter, jitter))
    start = int(rng.integers(0, n))
    span = num_frames * stride * abs(rate) * jit
    stamps = np.mod(np.floor(np.linspace(start, start + span, num=num_frames, endpoint=False)).astype(np.int64), n)
    return stamps[::-1].copy() if rate < 0 else stamps
