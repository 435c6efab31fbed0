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
