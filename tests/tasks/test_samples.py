"""Every registered task's result holds per-sample scores (issue 11's acceptance), one test per task.

Parametrized over the TASKS registry, so a task added later is covered with no edit here: Frozen
EfficientNet-Lite0 on the toy suite (its overrides, plus toy_setup.QUICK where a task's run would
take more than seconds), through :func:`tests.tasks.toy_setup.frozen_run`, which shares each run with
the task's own end-to-end test (DAVIS, VIP, JHMDB, UCF-101 probe, HMDB-51 retrieval, THUMOS). The
fine-tuning mode's samples are checked in test_supervised_finetune.py, on the run it already makes.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from benchmark.registry import TASKS
from benchmark.table import headline_is_mean
from tasks.base import Task
from tests.tasks.toy_setup import check_samples, frozen_run, sample_count

# the package's tasks (a new task file in tasks/ included); not the plugin tasks other test modules register
# at import, which read data of their own, not the toy suite
BUILT_IN = [n for n in TASKS.names() if TASKS.get(n).__module__.split(".")[0] == "tasks"]


def test_the_registry_lists_the_package_tasks():
    assert {"davis", "vip", "jhmdb", "ssv2_cls", "tradeoff", "thumos_loc", "ucf101_retrieval"} <= set(BUILT_IN)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_task_records_per_sample_scores(toy_root, tmp_path, name):
    task, out = frozen_run(toy_root, name, tmp_path)
    check_samples(task, out, sample_count(out))
    # a task scoring with the default aggregate has a headline that IS the mean of the paired column, so the
    # table's legend must not name it as one whose tested Δ differs from the cell's (classification, retrieval)
    meta = task.meta
    column = meta.sample_metric or meta.main_metric
    if type(task).aggregate.__func__ is Task.aggregate.__func__ and (column == meta.main_metric or column not in out.metrics):
        record = SimpleNamespace(samples=out.samples, sample_metric=meta.sample_metric, main_metric=meta.main_metric,
                                 metrics=out.metrics)
        assert headline_is_mean(record)
    assert all(math.isfinite(v) for v in out.metrics.values() if isinstance(v, float))
