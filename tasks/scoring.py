"""``bench score TASK``: score a folder of predictions on its own, like the official tools.

Each task scores its own folders (:meth:`tasks.base.Task.score_folder`, offered where ``score_split``
is set), so a task added in one file (a ``--plugin`` file included) is scored here with no edit; the
names ``bench score`` accepts are :func:`scorable_tasks`. The built-ins:

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
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from benchmark.errors import UserError


def scorable_tasks() -> list[str]:
    """Registered tasks that score saved predictions (``score_split`` set); imports them."""
    from benchmark.registry import TASKS

    return [name for name in TASKS.names() if getattr(TASKS.get(name), "score_split", "")]


def score(dataset: str, data_root: Path, predictions: Path, as_json: bool, out: Path | None = None) -> int:
    """Score ``predictions`` against the ground truth under ``data_root``; print; return the exit code.

    Writes ``global_results-<split>.csv`` and ``per-sequence_results-<split>.csv`` into ``out``
    (created; default: the prediction folder), always recomputed.

    ``dataset`` is the name of a task that scores predictions (``davis``, ``vip``, ``jhmdb`` or a
    plugin's).

    Raises:
        UserError: unknown task, missing folders or files, malformed predictions.
    """
    from benchmark.config import suggest
    from benchmark.context import RunContext
    from benchmark.registry import TASKS

    names = scorable_tasks()
    if dataset not in names:
        why = "does not score saved predictions" if dataset in TASKS.names() else "is not a known task"
        raise UserError(f"cannot score {dataset!r}: it {why}: {suggest(dataset, names)}choose one of {', '.join(names)} "
                        f"(a plugin's task: pass --plugin FILE)")
    cls = TASKS.get(dataset)
    data_root, predictions = Path(data_root), Path(predictions)
    if not predictions.is_dir():
        raise UserError(f"prediction folder {predictions} does not exist: pass the folder your method wrote")
    folder = RunContext(data_root=data_root, train_data=None, work_dir=predictions).dataset_path(cls.meta.dataset)
    metrics, table = cls.score_folder(folder, predictions)
    split = cls.score_split
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
