"""The task contract: a method in, metrics out.

A task declares its metadata (data set, main metric and its direction, protocol) and implements
``evaluate(method, ctx)``. Its defaults come from ``configs/tasks/<name>.yaml`` (else the class's
``default_config``), merged with the user's overrides before it is built.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

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

    def __init__(self, config: dict[str, Any]):
        self.config = dict(config)

    @abc.abstractmethod
    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        """Run the protocol with ``method``'s features and return the metrics."""
