"""Which stored records no longer describe what the code, weights and data would produce today.

``bench list results --stale`` answers it for a whole results folder, from the records alone: each
current record's identity parts are recomputed (the task's and method's ``version`` from the registry,
the sha256 of the weights file it names, the fingerprint of the data folders it read) and compared with
the ones it recorded. The records ``bench run`` already superseded (``seed<k>.stale-*.json``) and
version-1 records (written before identities existed) are listed too, with why.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from benchmark.errors import UserError
from benchmark.identity import data_fingerprint, identity_parts, stale_reasons, weights_digest
from benchmark.record import ResultRecord
from benchmark.results import iter_results, read_record


def parts_of(record: ResultRecord) -> dict[str, Any]:
    """The identity parts ``record`` was made with."""
    return identity_parts(record.method, record.backbone, record.task, record.seed, record.config, record.versions,
                          record.weights_digest, record.data_fingerprint)


def current_parts(record: ResultRecord, fingerprint=data_fingerprint, digest=weights_digest) -> dict[str, Any]:
    """The identity parts the same configuration would have now.

    Raises:
        UserError: the record's task or method is not registered (a plugin not loaded).
    """
    from benchmark.registry import METHODS, TASKS

    versions = {"task": getattr(TASKS.get(record.task), "version", 1),
                "method": getattr(METHODS.get(record.method), "version", 1)}
    cfg = record.config
    results = Path(record.path).parents[4] if record.path else None  # <results>/<m>/<b>/<t>/<variant>/seed<k>.json
    data = {"data": fingerprint(cfg.get("data"), results),
            "train_data": fingerprint(cfg.get("train_data"), results) if record.data_fingerprint.get("train_data") else None}
    return identity_parts(record.method, record.backbone, record.task, record.seed, cfg, versions,
                          digest(cfg.get("weights")), data)


def stale_records(results: Path) -> list[tuple[ResultRecord, str]]:
    """(record, why) for every stale record under ``results``, in path order."""
    fingerprint = lru_cache(maxsize=None)(data_fingerprint)  # many records share a data folder
    out = []
    for record in iter_results(results):
        if record.schema_version == 1:
            out.append((record, "schema version 1: written before identities were recorded; rerun to get a current record"))
            continue
        try:
            reasons = stale_reasons(parts_of(record), current_parts(record, fingerprint))
        except UserError as e:
            reasons = [f"cannot check ({e})"]
        if reasons:
            out.append((record, "; ".join(reasons)))
    for record in iter_results(results, stale=True):
        out.append((record, f"superseded by {Path(record.path).parent / f'seed{record.seed}.json'}"))
    for record in iter_results(results, failed=True, stale=True):
        out.append((record, f"superseded (failed) by {Path(record.path).parent / f'seed{record.seed}.json'}"))
    return sorted(out, key=lambda item: item[0].path)


def task_states(spec: Any, resolved: dict[str, Any], pending: list[str]) -> list[str]:
    """What ``bench run`` says before it starts, one line per task present or stale (with why)."""
    lines = []
    for task in spec.tasks:
        plan, where = resolved["tasks"][task], f"  {spec.method} x {spec.backbone} x {task} (seed {spec.seed})"
        old = read_record(plan.path)
        if task not in pending:
            lines.append(f"{where}: already present [variant {plan.variant}]")
        elif old is not None and old.complete and old.identity != plan.identity:
            why = "; ".join(stale_reasons(parts_of(old), plan.parts)) or "identity changed"
            lines.append(f"{where}: stale ({why}): recomputing; the old record is kept beside [variant {plan.variant}]")
    return lines
