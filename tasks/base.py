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
    """

    name: str
    dataset: str
    main_metric: str
    higher_is_better: bool = True
    protocol: str = ""
    needs_labels: bool = True


@dataclass
class TaskOutput:
    """What ``evaluate`` returns: scalar metrics plus paths of files it wrote."""

    metrics: dict[str, float]
    artifacts: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class Task(abc.ABC):
    """Base class of every evaluation task."""

    meta: ClassVar[TaskMeta]
    default_config: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: dict[str, Any]):
        self.config = dict(config)

    @abc.abstractmethod
    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        """Run the protocol with ``method``'s features and return the metrics."""
