"""The result record, typed: one :class:`ResultRecord` per (method, backbone, task, variant, seed).

A record is what every table, report and statistic reads, so its shape is declared once, here, with a
comment on every field (as lm-evaluation-harness documents its result keys). :func:`ResultRecord.from_json`
reads every schema version written so far: version 1 (``<method>/<backbone>/<task>__seed<k>.json``,
written before identities existed) loads with its identity fields empty and its variant named
``v1``, so an old result still shows in ``bench table`` but is never taken for a current one.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 2
V1_VARIANT = "v1"  # variant shown for version-1 records: their configuration diff was never recorded


@dataclass
class ResultRecord:
    """One evaluated (method, backbone, task, variant, seed), complete (``ok``) or ``failed``."""

    method: str  # method registry name
    backbone: str  # backbone registry name
    task: str  # task registry name
    seed: int  # seed of the run
    status: str  # "ok" (complete) or "failed" (a sweep's job or task failed; never counted)
    schema_version: int = SCHEMA_VERSION  # shape of this record; 1 = written before identities existed
    variant: str = "default"  # readable name of the configuration (diff against defaults, or --tag)
    identity: str = ""  # hash of what the numbers depend on (see benchmark.identity); "" for version 1
    versions: dict[str, int] = field(default_factory=dict)  # {"task": Task.version, "method": Method.version}
    weights_digest: str | None = None  # sha256 of the weights file's content; None = weights not from a file
    data_fingerprint: dict[str, str | None] = field(default_factory=dict)  # {"data": …, "train_data": …} digests
    backbone_label: str = ""  # how tables show the backbone ("… (RANDOM INIT)" for test encoders)
    main_metric: str = ""  # the task's headline metric, a key of ``metrics``
    higher_is_better: bool = True  # direction of ``main_metric``
    metrics: dict[str, Any] = field(default_factory=dict)  # scalar metrics of the task
    samples: dict[str, list] = field(default_factory=dict)  # per-sample scores, column-oriented ("id" + columns)
    sample_unit: str = ""  # what one sample is ("sequence", "video", "query")
    sample_metric: str = ""  # the per-sample column paired statistics compare ("" = main_metric)
    details: dict[str, Any] = field(default_factory=dict)  # task diagnostics (counts, feature-cache statistics)
    config: dict[str, Any] = field(default_factory=dict)  # fully resolved: method, backbone, task, weights, data
    config_hash: str = ""  # hash of ``config`` without paths (the configuration part of ``identity``)
    overrides_applied: dict[str, Any] = field(default_factory=dict)  # {"suite": name, "sections": {sec: {k: v}}}
    weights_id: str = ""  # the backbone's own name for its weights ("file@sha256:…", "hub:tag", "random-init")
    training: dict[str, Any] = field(default_factory=dict)  # the method's training record (params, time, memory)
    provenance: dict[str, Any] = field(default_factory=dict)  # git, packages, python, device, host, times, memory
    artifacts: dict[str, str] = field(default_factory=dict)  # files the task wrote (predictions, tables)
    timings: dict[str, float] = field(default_factory=dict)  # build_s, fit_s, eval_s
    error: str = ""  # one line: why a failed record failed
    traceback: str = ""  # the failure's traceback
    job: dict[str, Any] = field(default_factory=dict)  # executor, job id and log paths of a failed job
    path: str = field(default="", compare=False)  # where it was read from (not stored)

    @property
    def complete(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to disk (``path`` is where it lives, not part of it)."""
        out = dataclasses.asdict(self)
        out.pop("path")
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any], path: str = "") -> ResultRecord:
        """A record from any schema version's JSON object.

        Raises:
            ValueError: another (newer) schema version, or a required field missing.
        """
        version = obj.get("schema_version")
        if version not in (1, SCHEMA_VERSION):
            raise ValueError(f"schema version {version!r} (this code reads 1 and {SCHEMA_VERSION})")
        missing = [k for k in ("method", "backbone", "task", "seed", "status") if k not in obj]
        if missing:
            raise ValueError(f"required field(s) {', '.join(missing)} missing")
        known = {f.name for f in dataclasses.fields(cls)} - {"path"}
        values = {k: v for k, v in obj.items() if k in known}
        if version == 1:  # no identity, no variant, no per-sample scores were recorded then
            values.update(variant=V1_VARIANT, identity="")
        values.setdefault("backbone_label", obj["backbone"])
        record = cls(**values, path=str(path))
        problems = record.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return record

    def problems(self) -> list[str]:
        """Why this record cannot be trusted by a table (empty when it can).

        Every reader (tables, report, statistics, ``bench run``'s "already present") relies on these, so
        a record that breaks one is refused when read rather than crashing each of them later: the
        names and seed have their types; a complete record names its main metric, holds it, and every
        numeric metric is finite (a NaN or inf is no score); per-sample columns are lists as long as ``id``.
        """
        out = [f"{k} is {type(getattr(self, k)).__name__}, not text"
               for k in ("method", "backbone", "task", "variant", "main_metric", "identity") if not isinstance(getattr(self, k), str)]
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            out.append(f"seed {self.seed!r} is not an integer")
        if self.status not in ("ok", "failed"):
            out.append(f"status {self.status!r} is neither 'ok' nor 'failed'")
        for k in ("metrics", "samples", "config", "details"):
            if not isinstance(getattr(self, k), dict):
                out.append(f"{k} is {type(getattr(self, k)).__name__}, not an object")
        if out or not self.complete:
            return out
        if not self.main_metric:
            out.append("main_metric is missing")
        elif not _number(self.metrics.get(self.main_metric)):
            shown = self.metrics.get(self.main_metric, "absent")
            out.append(f"main metric {self.main_metric!r} is {shown!r}, not a number")
        bad = [k for k, v in self.metrics.items() if k != self.main_metric and isinstance(v, float) and not math.isfinite(v)]
        if bad:
            out.append(f"metric(s) {', '.join(bad)} not finite")
        ids = self.samples.get("id")
        if self.samples and not (isinstance(ids, list) and all(isinstance(c, list) and len(c) == len(ids)
                                                             for c in self.samples.values())):
            out.append("per-sample columns are not lists as long as 'id'")
        return out


def _number(value: Any) -> bool:
    """A finite int or float (JSON's ``NaN``/``Infinity`` read as floats; a bool is not a score)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
