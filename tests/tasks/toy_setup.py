"""Builders shared by the video-task tests: tasks with the toy suite's overrides, a run context, and the
Frozen EfficientNet-Lite0 run of a toy task that several tests check (evaluated once per test process)."""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from benchmark.config import defaults, merge, suites
from benchmark.context import RunContext
from benchmark.registry import TASKS

#: per task, on top of the toy suite's overrides: fewer frames, pixels and probe steps where a test checks
#: the shape of a result, not its value, so each run takes seconds. The tasks' own end-to-end tests use
#: the same settings and so share their run with the per-sample test over every task (test_samples.py).
QUICK: dict[str, dict[str, Any]] = {
    "davis": {"save_predictions": True}, "vip": {"save_predictions": True}, "jhmdb": {"save_predictions": True},
    "ucf101_cls": {"num_frames": 4, "iterations": 200},
    "hmdb51_cls": {"num_frames": 4, "iterations": 200},
    "ssv2_cls": {"num_frames": 2, "short_side": 32, "crop": 32, "iterations": 200},  # 384 toy clips: the pricey one
    "ucf101_retrieval": {"num_clips": 1, "num_frames": 4},
    "hmdb51_retrieval": {"num_clips": 1, "num_frames": 4, "ks": [1, 5, 10, 20, 10000]},
}
_RUNS: dict[tuple, tuple[Any, Any]] = {}


def toy_task(name: str, **over: Any):
    """Task ``name`` with its YAML defaults, the toy suite's overrides, then ``over``."""
    cls = TASKS.get(name)
    cfg = merge(defaults("task", name, cls), suites()["toy"]["overrides"].get(name, {}), f"toy.{name}")
    return cls(merge(cfg, over, name))


def toy_ctx(root: Path, work: Path) -> RunContext:
    return RunContext(data_root=root, train_data=root / "kinetics", work_dir=work, progress=False,
                      checkpoint_root=work / "ckpt")


@cache
def frozen_lite0():
    """One Frozen EfficientNet-Lite0 for the whole process (it holds no state between evaluations)."""
    from benchmark.backbones import build_backbone
    from methods.frozen import Frozen

    return Frozen(build_backbone("efficientnet_lite0"), {})


def frozen_run(root: Path, name: str, work: Path) -> tuple[Any, Any]:
    """``(task, output)`` of :func:`frozen_lite0` on toy task ``name`` with the :data:`QUICK` settings, evaluated
    once per process and data root (``work``: where the first evaluation writes), so the task's own test and
    the per-sample test over every task check one run."""
    key = (str(root), name)
    if key not in _RUNS:
        task = toy_task(name, **QUICK.get(name, {}))
        _RUNS[key] = task, task.evaluate(frozen_lite0(), toy_ctx(root, work))
    return _RUNS[key]


def sample_count(out) -> int:
    """How many samples a task reports it scored (``details``: sequences, videos, test videos or queries)."""
    keys = [k for k in ("sequences", "videos", "num_test", "num_queries") if k in out.details]
    assert keys, f"the task reports no sample count in details ({', '.join(out.details)})"
    return int(out.details[keys[0]])


def check_samples(task, out, n: int, metric: str = "") -> None:
    """``out.samples`` holds ``n`` rows of unique string ids, every column as long as the ids, the
    column paired statistics compare, and :meth:`Task.aggregate` gives back ``metric`` (default: the
    main metric, or the paired column where that is a metric of its own: the headline then has no
    per-sample form, as tradeoff's margin)."""
    import math

    import pytest

    samples = out.samples
    assert len(samples["id"]) == n > 0 and len(set(samples["id"])) == n
    assert all(isinstance(i, str) for i in samples["id"])
    assert {len(col) for col in samples.values()} == {n}
    name = task.meta.sample_metric or task.meta.main_metric
    column = samples[name]
    assert task.meta.sample_unit and all(math.isfinite(v) for v in column)  # paired statistics refuse NaN
    metric = metric or (name if name in out.metrics else task.meta.main_metric)
    assert type(task).aggregate(samples) == pytest.approx(out.metrics[metric], abs=1e-9)
