"""The task contract: a method in, metrics out.

A task declares its metadata (data set, main metric and its direction, protocol) and implements
``evaluate(method, ctx)``. Its defaults come from ``configs/tasks/<name>.yaml`` (else the class's
``default_config``), merged with the user's overrides before it is built.

Everything the rest of the harness needs to know about a task lives on its class, so a new task is
one file (a plugin included): :meth:`Task.resolve_config` fills preset values before the runner
hashes the config, :meth:`Task.aggregate` recomputes the main metric from any subset of per-sample
rows (what a bootstrap over samples draws), :meth:`Task.score_folder` (optional) scores a folder
of saved predictions for ``bench score``, and :meth:`Task.report_figure` (optional) draws the task's
own figure in ``bench report``.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark.context import RunContext


@dataclass(frozen=True)
class TaskMeta:
    """Static description of a task.

    Attributes:
        name: registry name (``davis``).
        dataset: data set name it reads (a key of ``configs/datasets.yaml``), "" if none.
        main_metric: the metric tables lead with.
        higher_is_better: direction of ``main_metric``.
        protocol: the published protocol followed, cited.
        needs_labels: False for diagnostics that run on any folder of videos.
        sample_unit: what one per-sample score is about ("sequence", "video", "query"), named in
            tables and in :mod:`benchmark.stats`' messages.
        sample_metric: the per-sample column paired statistics compare; "" means ``main_metric``.
    """

    name: str
    dataset: str
    main_metric: str
    higher_is_better: bool = True
    protocol: str = ""
    needs_labels: bool = True
    sample_unit: str = "video"
    sample_metric: str = ""


@dataclass
class TaskOutput:
    """What ``evaluate`` returns: scalar metrics, per-sample scores and paths of files it wrote.

    ``samples`` is column-oriented so it stays compact in JSON: ``"id"`` holds the sample ids (DAVIS
    sequence names, video paths relative to the data set, query ids) and every other key one value per
    id, in the same order (e.g. ``{"id": [...], "J&F": [...], "J": [...], "F": [...]}``). The column
    named by ``meta.sample_metric`` (else ``meta.main_metric``) is what paired statistics compare.
    """

    metrics: dict[str, float]
    artifacts: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list] = field(default_factory=dict)


class Task(abc.ABC):
    """Base class of every evaluation task."""

    meta: ClassVar[TaskMeta]
    version: ClassVar[int] = 1  # bump when the protocol or metric code changes: older records become stale
    default_config: ClassVar[dict[str, Any]] = {}
    #: split ``bench score`` scores (named in the CSVs it writes); "" when :meth:`score_folder` is not offered
    score_split: ClassVar[str] = ""

    def __init__(self, config: dict[str, Any]):
        self.config = dict(config)

    @abc.abstractmethod
    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        """Run the protocol with ``method``'s features and return the metrics."""

    @classmethod
    def resolve_config(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        """The fully resolved config the runner hashes and stores: ``null`` placeholders replaced by the
        values they stand for (a preset's constants), each type- and range-checked.

        Called before any model is built, so a bad value is a one-line ``UserError`` at once. The
        default returns ``cfg`` unchanged (a task whose YAML holds no placeholders).
        """
        return cfg

    @classmethod
    def aggregate(cls, samples: dict[str, list]) -> float:
        """The main metric recomputed from per-sample columns (any subset or resample of the rows); for
        a task whose main metric has no per-sample decomposition (tradeoff's margin D, pairwise over
        videos), the metric named by ``sample_metric``.

        Default: the mean of the ``sample_metric`` column, exact for tasks whose main metric is a mean
        over samples. Tasks whose metric pools differently (objects, pixels, detections) override it;
        each task's test checks that on all rows it returns the reported main metric.
        """
        return float(np.mean(samples[cls.meta.sample_metric or cls.meta.main_metric]))

    @classmethod
    def score_folder(cls, data_root: Path, predictions: Path) -> tuple[dict[str, float], Any]:
        """Score a folder of saved predictions against ``data_root``: ``(global metrics, per-sample
        DataFrame)``. Offered by the tasks that save predictions (``score_split`` set)."""
        raise NotImplementedError(f"task {cls.meta.name} does not score saved predictions")

    @classmethod
    def report_figure(cls, records: list[Any]) -> str | None:
        """This task's own figure for ``bench report``, drawn from its complete records
        (:class:`benchmark.record.ResultRecord`, every method, backbone, variant and seed), or None.

        An HTML fragment that ``bench report`` places, as is, between the leaderboard and the per-task
        charts: an ``<h2>`` heading, then the figure as inline SVG or an ``<img>`` whose source is a
        data URI (:func:`benchmark.report.png` turns a matplotlib ``Figure`` into one), so the page stays
        self-contained; escape any text taken from records. A task whose story a bar chart of its main
        metric tells needs none (the default: None); tradeoff draws Co-Settle's Figure 1 this way.
        """
        return None


def relative_id(path: Any, root: Path, fallback: str) -> str:
    """A stable sample id: ``path`` relative to the data set folder ``root`` (POSIX), else ``fallback``."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return fallback
