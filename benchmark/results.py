"""The result store: one JSON record per (method, backbone, task, seed), complete or absent.

Layout: ``<results>/<method>/<backbone>/<task>__seed<k>.json``, with the task's artifacts (per-sequence
tables, predictions) in ``<results>/<method>/<backbone>/artifacts/``. A record is written to a temporary
file in the same folder, flushed and fsynced, then renamed over the final name, so a reader sees either
the whole record or nothing — a killed job never leaves half a result.

Record keys (``SCHEMA_VERSION`` 1), each documented where it is built in :mod:`benchmark.runner`:
``schema_version, method, backbone, backbone_label, task, seed, status, main_metric,
higher_is_better, metrics, config, config_hash, weights_id, training, provenance, artifacts, timings``.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from benchmark.errors import UserError

SCHEMA_VERSION = 1


def result_path(results: Path, method: str, backbone: str, task: str, seed: int) -> Path:
    return Path(results) / method / backbone / f"{task}__seed{seed}.json"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as JSON to ``path`` atomically; on any OS error leave nothing behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"cannot write results under {path.parent} ({e.strerror}): choose a writable --results folder") from None
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write result {path} ({e.strerror}): free disk space or choose another --results folder") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def writable_problem(folder: Path) -> str | None:
    """Why nothing can be written under ``folder`` (None if it can), without creating it.

    Checked before a run starts, so a bad ``--results`` costs a second, not the hours of compute
    whose result could not be saved. The nearest existing ancestor must be a folder that accepts a
    file: a real write, since permission bits do not tell the whole story (root ignores them).
    """
    folder = Path(folder).absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        return f"{existing}: {e.strerror}"
    return None


def read_result(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None if it is absent, unparseable or of another schema version.

    A corrupt file is reported on stderr (one line) and treated as missing, so it is recomputed.
    """
    try:
        with open(path) as f:
            record = json.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        print(f"warning: result {path} is corrupt; it is ignored and will be recomputed", file=sys.stderr)
        return None
    if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION:
        print(f"warning: result {path} has another schema version; it is ignored and will be recomputed", file=sys.stderr)
        return None
    return record


def is_complete(path: Path, config_hash: str) -> bool:
    """True when a finished record for exactly this resolved config exists."""
    record = read_result(path)
    return bool(record and record.get("status") == "ok" and record.get("config_hash") == config_hash)


def iter_results(results: Path) -> Iterator[dict[str, Any]]:
    """Every valid record under ``results`` (corrupt ones reported and skipped)."""
    results = Path(results)
    if not results.is_dir():
        raise UserError(f"results folder {results} does not exist: run `bench run` first or pass --results DIR")
    for path in sorted(results.glob("*/*/*__seed*.json")):
        record = read_result(path)
        if record is not None and record.get("status") == "ok":
            record["_path"] = str(path)
            yield record
