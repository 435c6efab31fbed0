"""Builders shared by the video-task tests: tasks with the toy suite's overrides, a run context."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.config import defaults, merge, suites
from benchmark.context import RunContext
from benchmark.registry import TASKS


def toy_task(name: str, **over: Any):
    """Task ``name`` with its YAML defaults, the toy suite's overrides, then ``over``."""
    cls = TASKS.get(name)
    cfg = merge(defaults("task", name, cls), suites()["toy"]["overrides"][name], f"toy.{name}")
    return cls(merge(cfg, over, name))


def toy_ctx(root: Path, work: Path) -> RunContext:
    return RunContext(data_root=root, train_data=root / "kinetics", work_dir=work, progress=False,
                      checkpoint_root=work / "ckpt")


def check_samples(task, out, n: int, metric: str = "") -> None:
    """``out.samples`` holds ``n`` rows of unique string ids, every column as long as the ids, the
    column paired statistics compare, and :meth:`Task.aggregate` gives back ``metric`` (default: the
    main metric)."""
    import math

    import pytest

    samples = out.samples
    assert len(samples["id"]) == n > 0 and len(set(samples["id"])) == n
    assert all(isinstance(i, str) for i in samples["id"])
    assert {len(col) for col in samples.values()} == {n}
    column = samples[task.meta.sample_metric or task.meta.main_metric]
    assert task.meta.sample_unit and all(math.isfinite(v) for v in column)  # paired statistics refuse NaN
    assert type(task).aggregate(samples) == pytest.approx(out.metrics[metric or task.meta.main_metric], abs=1e-9)
