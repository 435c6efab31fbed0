"""The result store: one JSON record per (method, backbone, task, variant, seed), complete or absent.

Layout (schema 2)::

    <results>/<method>/<backbone>/<task>/<variant>/seed<k>.json            the current record
    <results>/<method>/<backbone>/<task>/<variant>/seed<k>.stale-<id8>.json  records it superseded
    <results>/<method>/<backbone>/<task>/<variant>/artifacts/seed<k>/      per-sequence tables, predictions

``variant`` names the configuration (:func:`benchmark.identity.variant_name`), so two configurations
of the same (method, backbone, task, seed) live side by side. A record whose identity no longer
matches the current one (new task or method version, new weights bytes, changed data) is *stale*:
``bench run`` recomputes it and renames the old file to ``seed<k>.stale-<first 8 of its identity>.json``
beside the new one; no result is ever deleted. Version-1 records (``<method>/<backbone>/<task>__seed<k>.json``)
are still read.

A record is written to a temporary file in the same folder, flushed and fsynced, then renamed over
the final name, so a reader sees either the whole record or nothing: a killed job never leaves half a
result.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from benchmark.errors import UserError
from benchmark.record import SCHEMA_VERSION, ResultRecord

__all__ = ["SCHEMA_VERSION", "ResultRecord", "result_path", "artifacts_dir", "write_json_atomic", "writable_problem",
           "read_record", "set_aside", "iter_results", "is_complete", "keep_stale", "stale_files"]

CURRENT = re.compile(r"^seed(-?\d+)\.json$")
STALE = re.compile(r"^seed(-?\d+)\.stale-[0-9a-z]+\.json$")
V1 = re.compile(r"^.+__seed(-?\d+)\.json$")


def result_path(results: Path, method: str, backbone: str, task: str, variant: str, seed: int) -> Path:
    return Path(results) / method / backbone / task / variant / f"seed{seed}.json"


def artifacts_dir(results: Path, method: str, backbone: str, task: str, variant: str, seed: int) -> Path:
    return Path(results) / method / backbone / task / variant / "artifacts" / f"seed{seed}"


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


def read_record(path: Path) -> ResultRecord | None:
    """The record at ``path`` (any schema version), or None if absent, invalid or of an unknown version.

    One bad file must never break a folder: a file that is not JSON, or whose record fails
    :meth:`ResultRecord.problems` (a NaN metric, a missing key), is said once on stderr and read as
    missing, so every table, report and listing goes on with the other records and ``bench run``
    recomputes it; the bad file is then kept beside, renamed (:func:`set_aside`), never overwritten.
    Readers that only read never rename: a table on a shared folder changes nothing in it.
    """
    try:
        with open(path, "rb") as f:
            obj = json.loads(f.read())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except PermissionError as e:
        _warn_once(path, f"warning: result {path} cannot be opened ({e.strerror}); it is skipped")
        return None
    except (ValueError, UnicodeDecodeError, OSError):  # JSONDecodeError is a ValueError
        _warn_once(path, f"warning: result {path} is corrupt; it is ignored and will be recomputed "
                         f"(the file is then kept as {_aside_name(Path(path))})")
        return None
    try:
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        return ResultRecord.from_json(obj, str(path))
    except (ValueError, TypeError) as e:
        _warn_once(path, f"warning: result {path} cannot be read ({e}); it is ignored and will be recomputed "
                         f"(the file is then kept as {_aside_name(Path(path))})")
        return None


_WARNED: set[str] = set()


def warn_again() -> None:
    """Start a new command: each unreadable record is said once per command (a run reads a record several
    times), again in the next command of the same process (tests and notebooks call ``main`` many times)."""
    _WARNED.clear()


def warned(path: Path | str) -> bool:
    """Whether this command has already said something about the record at ``path``."""
    return str(path) in _WARNED


def _warn_once(path: Path, line: str) -> None:
    """Print ``line`` the first time ``path`` is met in this process (a run reads a record several times)."""
    if str(path) not in _WARNED:
        _WARNED.add(str(path))
        print(line, file=sys.stderr)


def _aside_name(path: Path) -> str:
    """``seed0.json`` → ``seed0.invalid.json`` (a counter if taken): a name no record pattern matches."""
    stem = path.name.removesuffix(".json")
    name, n = f"{stem}.invalid.json", 1
    while (path.parent / name).exists():
        name, n = f"{stem}.invalid{n}.json", n + 1
    return name


def set_aside(path: Path) -> Path:
    """Rename the unreadable record ``path`` aside (:func:`_aside_name`) before a recomputed one takes its
    place: it may hold the only trace of a long run, so it is kept, never overwritten."""
    target = path.with_name(_aside_name(path))
    os.replace(path, target)
    return target


def is_complete(path: Path, identity: str) -> bool:
    """True when a finished record with exactly this identity exists at ``path``."""
    record = read_record(path)
    return bool(record and record.complete and record.identity == identity)


def _paths(results: Path, stale: bool) -> list[Path]:
    pattern = STALE if stale else CURRENT
    found = [p for p in results.glob("*/*/*/*/seed*.json") if pattern.match(p.name)]
    if not stale:
        found += [p for p in results.glob("*/*/*__seed*.json") if V1.match(p.name)]
    return sorted(found)


def iter_results(results: Path, failed: bool = False, stale: bool = False) -> Iterator[ResultRecord]:
    """The current records under ``results`` (corrupt ones reported and skipped): complete ones, or
    with ``failed`` the failed ones; with ``stale`` the superseded files (``seed<k>.stale-*.json``)."""
    results = Path(results)
    if not results.is_dir():
        raise UserError(f"results folder {results} does not exist: run `bench run` first or pass --results DIR")
    for path in _paths(results, stale):
        record = read_record(path)
        if record is not None and record.complete != failed:
            yield record


def stale_files(path: Path) -> list[Path]:
    """The superseded records kept beside the current record ``path``."""
    seed = CURRENT.match(path.name).group(1)  # type: ignore[union-attr]
    return sorted(p for p in path.parent.glob(f"seed{seed}.stale-*.json"))


def keep_stale(path: Path, record: ResultRecord) -> Path:
    """Rename the superseded ``record`` at ``path`` to ``seed<k>.stale-<id8>.json`` (a counter if taken)."""
    stem = f"seed{record.seed}.stale-{(record.identity or 'v1')[:8]}"
    target, n = path.with_name(f"{stem}.json"), 1
    while target.exists():
        target, n = path.with_name(f"{stem}{n}.json"), n + 1
    os.replace(path, target)
    return target
