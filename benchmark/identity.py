"""What a result's numbers depend on, by content: configuration, code versions, weights, data.

A result is reusable only while all of these are unchanged (MTEB pins model revisions and task
versions the same way; lm-evaluation-harness records task versions):

- the **fully resolved** configuration of method, backbone and task (preset ``null``s filled in);
- the task's and the method's ``version`` (bumped by their authors when protocol or metric code changes);
- the **sha256 of the weights file's content** (a new checkpoint at the same path is another result),
  memoised on (path, size, mtime) in a small JSON file under the cache root, so a multi-GB file is
  hashed once, not on every ``bench run``;
- a **fingerprint of the data read**: every file's relative path, size and modification time under
  the task's data set folder (and the training videos' folder for methods that train), plus the
  content of small files (annotations, split lists), listed with ``os.scandir`` in well under a
  second for a data set of tens of thousands of files.

Paths themselves are not part of the identity: moving the data or the weights elsewhere does not
make a result stale. Code commit and library versions stay in the record's provenance.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from benchmark.config import config_hash
from benchmark.data import cache_root

SMALL_FILE = 256 * 1024  # files up to this size have their content hashed (annotations, split lists)
CONTENT_BUDGET = 32 * 2**20  # at most this many bytes are read per fingerprint; beyond it size + mtime only
VARIANT_MAX = 48  # longer variant names keep a readable prefix and end in a hash of the full diff


def weights_digest(path: str | Path | None) -> str | None:
    """sha256 hex digest of the file at ``path`` (None for None), memoised on path, size and mtime."""
    if path is None:
        return None
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError:
        return None  # a missing file is reported by the backbone that tries to load it
    memo_file = cache_root() / "weights-digests.json"
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    memo = {k: v for k, v in memo.items() if not k.startswith(f"{path}|")}  # one entry per path
    memo[key] = h.hexdigest()
    try:
        from benchmark.results import write_json_atomic

        write_json_atomic(memo_file, memo)
    except Exception:  # noqa: BLE001 - a memo that cannot be written only costs a rehash next time
        pass
    return memo[key]


def _walk(folder: Path, skip: set[str]) -> list[tuple[str, os.stat_result]]:
    """(relative path, stat) of every file under ``folder``, sorted; hidden entries, the folders in ``skip``
    and symlinked folders already seen (a link loop) are not entered."""
    out: list[tuple[str, os.stat_result]] = []
    stack, seen = [folder], set()
    while stack:
        current = stack.pop()
        try:
            st = current.stat()
            entries = list(os.scandir(current))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen or str(current.resolve()) in skip:
            continue
        seen.add((st.st_dev, st.st_ino))
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=True):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=True):
                out.append((os.path.relpath(entry.path, folder), entry.stat(follow_symlinks=True)))
    return sorted(out, key=lambda item: item[0])


def data_fingerprint(folder: str | Path | None, exclude: str | Path | None = None) -> str | None:
    """Digest of the files under ``folder`` (None for None or a missing folder): names, sizes, mtimes,
    and the content of the small files in name order until :data:`CONTENT_BUDGET` bytes were read.

    ``exclude`` (the results folder) is left out where it lies inside ``folder``: results written next
    to the data must not make the data look changed.
    """
    if folder is None or not Path(folder).is_dir():
        return None
    folder = Path(folder)
    h = hashlib.sha256()
    budget = CONTENT_BUDGET
    for rel, st in _walk(folder, {str(Path(exclude).resolve())} if exclude else set()):
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        if st.st_size <= SMALL_FILE and st.st_size <= budget:
            budget -= st.st_size
            try:
                h.update(hashlib.sha256((folder / rel).read_bytes()).digest())
            except OSError:
                h.update(b"unreadable")
    return h.hexdigest()


def flat_diff(defaults: dict[str, Any], resolved: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{dotted.key: value}`` of every leaf of ``resolved`` that differs from ``defaults``."""
    out: dict[str, Any] = {}
    for key, value in resolved.items():
        base = defaults.get(key) if isinstance(defaults, dict) else None
        if isinstance(value, dict) and isinstance(base, dict):
            out.update(flat_diff(base, value, f"{prefix}{key}."))
        elif value != base or key not in defaults:
            out[f"{prefix}{key}"] = value
    return out


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(_text(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def variant_name(diff: dict[str, Any], suite: str | None = None, tag: str | None = None) -> str:
    """Short, file-name-safe name of a configuration: ``--tag``, else ``default``, ``topk=5``,
    ``toy`` (a suite's own overrides), ``toy,topk=5``. A name that had to be shortened (past
    :data:`VARIANT_MAX` characters) or lost characters to :func:`safe_name` ends in a hash of the whole
    diff, so two configurations never share a name."""
    if tag:
        return safe_name(tag)
    raw = ",".join(([suite] if suite else []) + [f"{k}={_text(v)}" for k, v in sorted(diff.items())])
    name = safe_name(raw) if raw else "default"
    if len(name) > VARIANT_MAX or (raw and name != raw):
        name = f"{name[:VARIANT_MAX - 9].rstrip(',.=-_+')}-{config_hash([suite, diff])[:8]}"
    return name


def safe_name(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._,=+@-]`` replaced by ``_`` (no leading dot)."""
    return re.sub(r"[^A-Za-z0-9._,=+@-]", "_", text).lstrip(".") or "_"


def identity_of(parts: dict[str, Any]) -> str:
    """The identity hash of a record's identity parts (see :func:`identity_parts`)."""
    return config_hash(parts)


def identity_parts(method: str, backbone: str, task: str, seed: int, config: dict[str, Any],
                   versions: dict[str, int], weights: str | None, data: dict[str, str | None]) -> dict[str, Any]:
    """Everything a result depends on: ``config`` holds the resolved method, backbone and task configs."""
    return {
        "method": method, "backbone": backbone, "task": task, "seed": seed,
        "config": {k: config.get(k) for k in ("method", "backbone", "task")},
        "versions": versions, "weights_digest": weights, "data_fingerprint": data,
    }


def stale_reasons(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Why a record with identity parts ``recorded`` no longer matches ``current`` (empty: it matches)."""
    reasons = []
    for kind in ("task", "method"):
        old, new = recorded.get("versions", {}).get(kind), current["versions"].get(kind)
        if old != new:
            reasons.append(f"{kind} version {old} -> {new}")
    if recorded.get("weights_digest") != current["weights_digest"]:
        old, new = recorded.get("weights_digest"), current["weights_digest"]
        reasons.append(f"weights digest {(old or 'none')[:12]} -> {(new or 'none')[:12]}")
    for role, new in current["data_fingerprint"].items():
        old = recorded.get("data_fingerprint", {}).get(role)
        if old != new:
            reasons.append(f"{role} fingerprint {(old or 'none')[:12]} -> {(new or 'none')[:12]}")
    if not reasons and recorded.get("config") != current["config"]:
        reasons.append("resolved configuration changed (another --tag or preset)")
    return reasons
