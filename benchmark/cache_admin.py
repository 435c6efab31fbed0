"""``bench cache ls|du|clear|prune``: inspect and trim a feature cache, never anything else.

Why a separate module: :mod:`benchmark.cache` is on every run's path; this is the user's tool. It
deletes only what the cache wrote: the folder must hold the cache's :data:`~benchmark.cache.MARKER`
(so a data folder, a results folder or ``$I2V_BENCH_CACHE`` itself is refused with one line), and
within it only files recognised by name (``<backbone>/<xx>/<key>.npy`` with ``xx = key[:2]``, their
``.json`` sidecar, the cache's own temp files) and by schema (a sidecar that parses as the cache's
metadata) are removed. A user's file dropped into the folder stays.
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmark.cache import MARKER, _safe
from benchmark.errors import UserError

_KEY = re.compile(r"[0-9a-f]{32}")
_TMP = re.compile(r"\.[0-9a-f]{32}\.(npy|json)\..+\.tmp")
_SCHEMA = ("backbone", "shape", "dtype", "format")
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3,
          "t": 1024**4, "tb": 1024**4}


@dataclasses.dataclass
class Entry:
    """One cached entry as ``bench cache ls`` shows it (``last_used``: newest of atime and mtime)."""

    path: Path
    backbone: str
    size: int
    meta: dict[str, Any]
    last_used: float


def _meta(npy: Path) -> dict[str, Any] | None:
    """The sidecar of ``npy`` if it has the cache's schema, else None."""
    try:
        meta = json.loads(npy.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and all(k in meta for k in _SCHEMA) else None


def entries(root: Path, backbone: str | None = None) -> Iterator[Entry]:
    """Every recognised entry under ``root`` (optionally of one backbone folder)."""
    root = Path(root)
    if not root.is_dir():
        return
    folders = [root / _safe(backbone)] if backbone else sorted(p for p in root.iterdir() if p.is_dir())
    for folder in folders:
        for npy in sorted(folder.glob("??/*.npy")):
            meta = _meta(npy)
            if not _KEY.fullmatch(npy.stem) or npy.parent.name != npy.stem[:2] or meta is None:
                continue
            try:
                st, side = npy.stat(), npy.with_suffix(".json").stat()
            except FileNotFoundError:  # removed by a concurrent clear
                continue
            yield Entry(npy, folder.name, st.st_size + side.st_size, meta, max(st.st_atime, st.st_mtime))


def _check_cache(root: Path) -> bool:
    """True when ``root`` is a feature cache; False when it does not exist; refuses any other folder."""
    if not root.exists():
        return False
    if not (root / MARKER).is_file():
        hint = f"; did you mean {root / 'features'}?" if (root / "features" / MARKER).is_file() else ""
        raise UserError(f"{root} is not a feature cache (no {MARKER} file): left untouched{hint}")
    return True


def _remove(e: Entry) -> None:
    for p in (e.path, e.path.with_suffix(".json")):
        p.unlink(missing_ok=True)


def _tidy(root: Path, folders: list[Path]) -> None:
    """Remove the cache's stale temp files (older than an hour: a live writer's are kept) and empty shard folders."""
    for folder in folders:
        for shard in folder.glob("??"):
            for tmp in shard.iterdir() if shard.is_dir() else ():
                try:
                    if _TMP.fullmatch(tmp.name) and time.time() - tmp.stat().st_mtime > 3600:
                        tmp.unlink()
                except OSError:
                    pass
            try:
                shard.rmdir()  # only when empty
            except OSError:
                pass
        try:
            folder.rmdir()
        except OSError:
            pass


def clear(root: Path, backbone: str | None = None) -> tuple[int, int]:
    """Remove every recognised entry (or one backbone's); return ``(entries, bytes)`` removed."""
    root = Path(root)
    if not _check_cache(root):
        return 0, 0
    found = list(entries(root, backbone))
    for e in found:
        _remove(e)
    _tidy(root, [root / _safe(backbone)] if backbone else [p for p in root.iterdir() if p.is_dir()])
    return len(found), sum(e.size for e in found)


def parse_size(text: str) -> int:
    """``"500M"``, ``"2G"``, ``"1.5GB"`` or a byte count → bytes (binary units)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text or "")
    if not m or m.group(2).lower() not in _UNITS:
        raise UserError(f"--max-size {text!r} is not a size: write e.g. 500M, 20G or a byte count")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def prune(root: Path, max_size: int) -> tuple[int, int, int]:
    """Remove the least recently used entries until the cache holds at most ``max_size`` bytes.

    Returns ``(entries removed, bytes removed, bytes kept)``. Recency is the newer of a file's atime
    and mtime (hits refresh the mtime hourly, :func:`benchmark.cache._touch`; atime alone is unreliable
    on ``noatime``/``relatime`` and network mounts).
    """
    root = Path(root)
    if not _check_cache(root):
        return 0, 0, 0
    found = sorted(entries(root), key=lambda e: e.last_used)
    total, removed, freed = sum(e.size for e in found), 0, 0
    for e in found:
        if total - freed <= max_size:
            break
        _remove(e)
        removed, freed = removed + 1, freed + e.size
    _tidy(root, [p for p in root.iterdir() if p.is_dir()])
    return removed, freed, total - freed


def usage(root: Path) -> dict[str, tuple[int, int]]:
    """``backbone folder -> (entries, bytes)``."""
    out: dict[str, tuple[int, int]] = {}
    for e in entries(root):
        n, b = out.get(e.backbone, (0, 0))
        out[e.backbone] = (n + 1, b + e.size)
    return out


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def report(action: str, root: Path, backbone: str | None = None, max_size: str | None = None) -> str:
    """Text of ``bench cache ls`` (one line per entry), ``du`` (per backbone and total), ``clear`` or ``prune``."""
    if action == "clear":
        n, size = clear(root, backbone)
        return f"removed {n} entries ({_human(size)}) from {root}"
    if action == "prune":
        if max_size is None:
            raise UserError("bench cache prune needs --max-size SIZE, e.g. --max-size 20G")
        n, size, kept = prune(root, parse_size(max_size))
        return f"removed {n} least recently used entries ({_human(size)}); {_human(kept)} kept in {root}"
    if action == "du":
        use = usage(root)
        if backbone:
            use = {k: v for k, v in use.items() if k == _safe(backbone)}
        lines = [f"{name:<28} {n:>7} entries {_human(size):>10}" for name, (n, size) in sorted(use.items())]
        total_n, total = sum(n for n, _ in use.values()), sum(s for _, s in use.values())
        return "\n".join([*lines, f"{'total':<28} {total_n:>7} entries {_human(total):>10}  ({root})"])
    header = (f"{'backbone':<20} {'input':>16} -> {'tokens':<14} {'dtype':<8} {'size':>9}  {'encode':>10}  "
              f"{'created':<25} weights_id  key")
    rows = [header]
    for e in entries(root, backbone):
        m = e.meta
        shape_in, shape_out = ("x".join(map(str, m.get(k, []))) or "?" for k in ("input_shape", "shape"))
        rows.append(f"{e.backbone:<20} {shape_in:>16} -> {shape_out:<14} {m.get('dtype', '?'):<8} "
                    f"{_human(e.size):>9}  {m.get('compute_s', '?')!s:>8} s  {m.get('created', '?'):<25} "
                    f"{m.get('weights_id', '?')}  {e.path.stem}")
    return "\n".join(rows) if len(rows) > 1 else f"no cached features under {root}"
