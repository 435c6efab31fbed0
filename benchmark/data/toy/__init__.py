"""The toy suite: small, meaningful synthetic data in every benchmark's real on-disk layout.

``generate(out, seed, size)`` writes DAVIS, VIP, JHMDB (:mod:`benchmark.data.toy.dense`) and UCF101,
HMDB51, SSv2, kinetics, THUMOS, clips (:mod:`benchmark.data.toy.video`) under ``out``, in the folder names
of ``configs/datasets.yaml``, so the real readers and metrics run end to end without downloads.
Generation is deterministic in ``(seed, size)``; a marker written last (``TOY_COMPLETE.json``) makes
a second call with the same arguments free, and an interrupted or differently-sized run is redone
from scratch rather than mixed with stale files.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from benchmark.errors import UserError

VERSION = 4  # bump when the generated content changes, so old toy folders are regenerated
MARKER = "TOY_COMPLETE.json"
_IN_PROGRESS = "TOY_IN_PROGRESS.json"
FOLDERS = ("DAVIS", "VIP", "JHMDB", "UCF101", "HMDB51", "SSv2", "kinetics", "THUMOS", "clips")


def generate(out: Path, seed: int = 0, size: str = "small") -> Path:
    """Write the whole toy suite under ``out`` (skipped if already complete for this seed and size).

    Returns:
        ``out``, the data root to pass as ``--data-root``.
    """
    from benchmark.data.toy.dense import generate_dense
    from benchmark.data.toy.video import SIZES, generate_video

    if size not in SIZES:
        raise UserError(f"unknown toy size {size!r}: choose one of {', '.join(SIZES)}")
    out = Path(out)
    want = {"seed": int(seed), "size": size, "version": VERSION}
    marker = out / MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == want:
                return out
        except json.JSONDecodeError:
            pass
    if marker.is_file() or (out / _IN_PROGRESS).is_file():  # our own earlier output: start clean
        marker.unlink(missing_ok=True)
        for name in FOLDERS:
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / _IN_PROGRESS).write_text(json.dumps(want))
    dense_rng, video_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(2))
    generate_dense(out, dense_rng, size)
    generate_video(out, video_rng, size)
    marker.write_text(json.dumps(want, indent=1))
    (out / _IN_PROGRESS).unlink()
    return out
