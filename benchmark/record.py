"""The result record, typed: one :class:`ResultRecord` per (method, backbone, task, variant, seed).

A record is what every table, report and statistic reads, so its shape is declared once, here, with a
comment on every field (as lm-evaluation-harness documents its result keys). :func:`ResultRecord.from_json`
reads every schema version written so far: version 1 (``<method>/<backbone>/<task>__seed<k>.json``,
written before identities existed) loads with its identity fields empty and its variant named
``v1``, so an old result still shows in ``bench table`` but is never taken for a current one.
"""
from __future__ import annotations

import dataclasses
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
        return cls(**values, path=str(path))
