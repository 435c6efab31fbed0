"""``bench score davis|vip|jhmdb``: score a folder of predictions on its own, like the official tools.

- ``davis``: a DAVIS result folder ``<predictions>/<seq>/<frame>.png`` (indexed or grey id maps, the
  layout davis2017-evaluation reads and ``save_predictions`` writes), scored on the val split with
  :mod:`tasks.metrics.davis`. The official ``evaluation_method.py`` silently reuses
  ``global_results-val.csv`` / ``per-sequence_results-val.csv`` when they already exist in the result
  folder, so re-scoring changed predictions prints stale numbers; here both files are always
  recomputed and overwritten.
- ``vip``: ``<predictions>/<video>/<frame>.png`` part ids for the annotated frames after the first.
- ``jhmdb``: ``<predictions>/<action>/<video>.npy`` arrays ``(T, 15, 2)`` of 0-based (x, y) pixels
  (NaN = lost) for the split-1 test clips.

The global table is printed as the official tool prints it (one row, one column per statistic),
then the per-sequence table; ``--json`` prints one JSON object instead.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from benchmark.errors import UserError
from benchmark.data.davis import read_mask

SPLITS = {"davis": "val", "vip": "val", "jhmdb": "split1"}


def _prediction(path: Path, what: str) -> Path:
    if not path.is_file():
        raise UserError(f"prediction {path} does not exist: the {what} result folder must hold one file per scored frame")
    return path


def _davis(data_root: Path, predictions: Path) -> tuple[dict[str, float], pd.DataFrame]:
    from benchmark.data.davis import load_davis
    from tasks.davis import scorable, score_sequences
    from tasks.metrics.davis import BOUND_TH

    def items():
        for seq in scorable(load_davis(data_root, "val", "480p"), "val"):
            gt = seq.read_masks()
            pred = np.zeros_like(gt)  # frames 0 and T-1 are not scored: their files are optional
            for t, path in enumerate(seq.frames[1:-1], start=1):
                pred[t] = read_mask(_prediction(predictions / seq.name / f"{path.stem}.png", "DAVIS"), require_palette=False)
            yield seq.name, gt, pred

    return score_sequences(items(), BOUND_TH)


def _vip(data_root: Path, predictions: Path) -> tuple[dict[str, float], pd.DataFrame]:
    from benchmark.data.vip import load_vip, read_parts
    from tasks.vip import score_videos

    def items():
        for video in load_vip(data_root, "val"):
            scored = [t for t in sorted(video.labels) if t > 0]
            yield video.name, [
                (read_parts(video.labels[t]),
                 read_mask(_prediction(predictions / video.name / f"{video.frames[t].stem}.png", "VIP"), require_palette=False))
                for t in scored
            ]

    metrics, per_video, _ = score_videos(items())
    return metrics, per_video


def _jhmdb(data_root: Path, predictions: Path) -> tuple[dict[str, float], pd.DataFrame]:
    from benchmark.data.jhmdb import load_jhmdb
    from tasks.jhmdb import score_videos

    def items():
        for video in load_jhmdb(data_root, 1, "test"):
            path = _prediction(predictions / video.action / f"{video.name}.npy", "JHMDB")
            try:
                pred = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as e:
                raise UserError(f"cannot read prediction {path} ({e}): save a float (T, 15, 2) array with numpy.save") from None
            yield video.name, video.keypoints, pred

    metrics, per_video, _ = score_videos(items())
    return metrics, per_video


SCORERS: dict[str, Callable[[Path, Path], tuple[dict[str, float], pd.DataFrame]]] = {
    "davis": _davis, "vip": _vip, "jhmdb": _jhmdb,
}


def score(dataset: str, data_root: Path, predictions: Path, as_json: bool, out: Path | None = None) -> int:
    """Score ``predictions`` against the ground truth under ``data_root``; print; return the exit code.

    Writes ``global_results-<split>.csv`` and ``per-sequence_results-<split>.csv`` into ``out``
    (created; default: the prediction folder), always recomputed.

    Raises:
        UserError: unknown data set, missing folders or files, malformed predictions.
    """
    if dataset not in SCORERS:
        raise UserError(f"cannot score data set {dataset!r}: choose one of {', '.join(SCORERS)}")
    data_root, predictions = Path(data_root), Path(predictions)
    if not predictions.is_dir():
        raise UserError(f"prediction folder {predictions} does not exist: pass the folder your method wrote")
    from benchmark.context import RunContext

    folder = RunContext(data_root=data_root, train_data=None, work_dir=predictions).dataset_path(dataset)
    metrics, table = SCORERS[dataset](folder, predictions)
    split = SPLITS[dataset]
    global_table = pd.DataFrame([metrics])
    out = Path(out) if out is not None else predictions
    out.mkdir(parents=True, exist_ok=True)
    global_table.to_csv(out / f"global_results-{split}.csv", index=False)
    table.to_csv(out / f"per-sequence_results-{split}.csv", index=False)
    if as_json:
        print(json.dumps({"dataset": dataset, "split": split, "global": metrics,
                          "per_sequence": table.to_dict(orient="records")}, indent=1, default=float))
        return 0
    print(f"--------------------------- Global results for {split} ---------------------------")
    print(tabulate(global_table, headers="keys", showindex=False, floatfmt=".3f", tablefmt="plain"))
    print(f"\n---------- Per sequence results for {split} ----------")
    print(tabulate(table, headers="keys", showindex=False, floatfmt=".3f", tablefmt="plain"))
    return 0
