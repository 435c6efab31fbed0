"""Content-addressed cache of frozen-encoder tokens, shared by every method and every concurrent job.

Why: the frozen encoder's forward pass is the dominant cost of an evaluation, and it is the same for
every method that keeps the encoder frozen (``frozen``, Co-Settle's projection, AdViSe's input). A
second method on the same backbone should only pay for decoding, its own head and the task.

Key: the SHA-256 of (cache format, backbone name/class/stride/dim, ``weights_id``, a digest of the
backbone's actual parameter and buffer bytes, the backbone options, device type and autocast precision,
the stored dtype, and the exact input tensor: shape, dtype and an XXH3-128 of its bytes). Hashing the
input makes the key cover resolution, cropping, preprocessing and the data files' contents with no
help from the task; hashing the parameters covers what ``weights_id`` cannot: random-init backbones
(all ``random-init``) and an encoder fine-tuned in place (``finetune``), which must never be served
the pristine encoder's tokens. The parameter digest is memoised on the tensors' version counters, so
it is recomputed only after an in-place update (an optimiser step, ``load_state_dict``).

Storage: one ``.npy`` per entry, ``<root>/<backbone>/<key[:2]>/<key>.npy`` (read with
``np.load(mmap_mode='r')``) and a ``.json`` sidecar (what and when, the compute seconds a hit saves,
for ``bench cache ls``). float32 by default, so a cached result is bit-identical to the uncached one
and results never depend on the cache's state; ``dtype='float16'`` halves the disk and is applied to
misses too, for the same reason. Writes go to a unique temp file in the same folder and are moved in
with ``os.replace``: concurrent jobs never see a partial entry, and the same key always carries the
same bytes, so racing writers are harmless. No fsync: a torn entry after a crash fails to load and is
recomputed, like any corrupt entry. A cache problem (unreadable entry, full disk) is logged and the
tokens are computed; it never fails a run.

Only inference goes through here (:meth:`methods.base.Method.encode_frames`, eval mode): training
paths feed randomly augmented frames to ``backbone.encode`` directly and never touch the cache.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import operator
import os
import re
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xxhash

from benchmark.backbones.base import Backbone
from benchmark.errors import UserError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
STORE_DTYPES = {"float32": np.float32, "float16": np.float16}
_DIGESTS: weakref.WeakKeyDictionary[Backbone, tuple[int, list[torch.Tensor], list[tuple[int, int]], str]] = \
    weakref.WeakKeyDictionary()
_REGISTRATIONS = [0]  # bumped whenever any module registers or replaces a parameter, buffer or submodule


def _registered(*_: Any) -> None:
    _REGISTRATIONS[0] += 1


for _register in (torch.nn.modules.module.register_module_parameter_registration_hook,
                  torch.nn.modules.module.register_module_buffer_registration_hook,
                  torch.nn.modules.module.register_module_module_registration_hook):
    _register(_registered)


def default_root(results: Path | str) -> Path:
    """``$I2V_BENCH_CACHE/features`` when set (shared by every results folder), else ``<results>/cache/features``."""
    env = os.environ.get("I2V_BENCH_CACHE")
    return Path(env) / "features" if env else Path(results) / "cache" / "features"


def _update(h: Any, t: torch.Tensor) -> None:
    """Feed a tensor's raw bytes to ``h`` (any dtype, bf16 included; CUDA tensors are copied to host)."""
    h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)


def weights_digest(backbone: Backbone) -> str:
    """SHA-256 prefix of every parameter and buffer of ``backbone``, names and shapes included.

    Memoised per backbone on each tensor's ``(data_ptr, _version)``: PyTorch bumps a tensor's version on
    every in-place write (an optimiser step, ``load_state_dict``), so a fine-tuned or reloaded encoder
    gets a new digest and a new cache key. The check runs on every lookup, so the tensor list is kept
    too and walked again only after some module registered a parameter, buffer or submodule (a
    replaced tensor); walking ``named_parameters`` each time cost 3-4 ms per lookup, most of a hit.
    """
    memo = _DIGESTS.get(backbone)
    tensors = memo[1] if memo is not None and memo[0] == _REGISTRATIONS[0] else [
        t for _, t in (*backbone.named_parameters(), *backbone.named_buffers())]
    versions = [(t.data_ptr(), t._version) for t in tensors]
    if memo is not None and memo[2] == versions and len(memo[1]) == len(tensors) and all(map(operator.is_, memo[1], tensors)):
        _DIGESTS[backbone] = (_REGISTRATIONS[0], tensors, versions, memo[3])  # a registration elsewhere
        return memo[3]
    h = hashlib.sha256()
    for name, t in (*backbone.named_parameters(), *backbone.named_buffers()):
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        _update(h, t)
    digest = h.hexdigest()[:16]
    _DIGESTS[backbone] = (_REGISTRATIONS[0], tensors, versions, digest)
    return digest


def precision(backbone: Backbone) -> str:
    """Device type, autocast dtype and CUDA matmul precision: bf16/TF32 tokens must not be served to an fp32 run.

    Covers an autocast context around the call and, on CUDA, the backbone's own ``amp_dtype``
    (:meth:`Backbone.encode` autocasts frozen encoders on CUDA).
    """
    device = next(backbone.parameters()).device
    tag = device.type
    if torch.is_autocast_enabled(device.type):
        tag += f":autocast-{torch.get_autocast_dtype(device.type)}"
    if device.type == "cuda":
        tag += f":amp-{getattr(backbone, 'amp_dtype', None)}:matmul-{torch.get_float32_matmul_precision()}"
    return tag


@dataclasses.dataclass
class CacheStats:
    """Counters of one :class:`FeatureCache` (``since`` gives one task's share for its result record).

    Attributes:
        hits, misses: entries served / computed.
        recovered: unreadable entries that were recomputed and rewritten.
        seconds_saved: encoder seconds the hits saved (each entry records its compute time).
        compute_s: encoder seconds spent on misses.
        overhead_s: hashing, reading and writing seconds.
    """

    hits: int = 0
    misses: int = 0
    recovered: int = 0
    seconds_saved: float = 0.0
    compute_s: float = 0.0
    overhead_s: float = 0.0

    def since(self, earlier: CacheStats) -> dict[str, float]:
        now, before = dataclasses.asdict(self), dataclasses.asdict(earlier)
        return {k: round(now[k] - before[k], 4) for k in now}


class FeatureCache:
    """A folder of cached encoder tokens (see the module docstring for key and layout).

    Args:
        root: cache folder (:func:`default_root`).
        options: the backbone's resolved options (part of the key: e.g. a ViT's ``num_heads``).
        dtype: ``float32`` (default, exact) or ``float16`` (half the disk, rounded tokens).
    """

    def __init__(self, root: Path | str, options: dict[str, Any] | None = None, dtype: str = "float32"):
        if dtype not in STORE_DTYPES:
            raise UserError(f"feature cache dtype {dtype!r} is unknown: use float32 or float16")
        self.root = Path(root)
        self.options = dict(options or {})
        self.dtype = dtype
        self.stats = CacheStats()

    def key(self, backbone: Backbone, frames: torch.Tensor) -> str:
        """Hex key of the tokens of ``frames`` ``(T,3,H,W)`` under ``backbone``."""
        h = xxhash.xxh3_128()  # the frames are hashed on every lookup: a fast non-cryptographic hash (~10x SHA-256 here)
        _update(h, frames)
        ident = {
            "format": FORMAT_VERSION, "backbone": backbone.meta.name,
            "class": f"{type(backbone).__module__}.{type(backbone).__qualname__}",
            "weights_id": backbone.weights_id, "weights_digest": weights_digest(backbone),
            "stride": backbone.stride, "dim": backbone.dim, "options": self.options,
            "precision": precision(backbone), "store_dtype": self.dtype,
            "input": [list(frames.shape), str(frames.dtype), h.hexdigest()],
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def path(self, backbone_name: str, key: str) -> Path:
        return self.root / _safe(backbone_name) / key[:2] / f"{key}.npy"

    def tokens(self, backbone: Backbone, frames: torch.Tensor,
               compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Tokens ``(T,h,w,C)`` float32 of ``frames``: from the cache, or ``compute(frames)`` stored for next time.

        ``compute`` must be the uncached encoder call; its result is returned on a miss (rounded through
        the stored dtype), on the device it computed on. A hit is returned on the CPU.
        """
        t0 = time.perf_counter()
        path = self.path(backbone.meta.name, self.key(backbone, frames))
        cached = self._load(path, frames.shape[0], backbone.dim)
        if cached is not None:
            self.stats.hits += 1
            saved = _sidecar(path).get("compute_s")
            self.stats.seconds_saved += saved if isinstance(saved, (int, float)) else 0.0
            self.stats.overhead_s += time.perf_counter() - t0
            return cached
        t1 = time.perf_counter()
        out = compute(frames)
        array = out.detach().cpu().numpy().astype(STORE_DTYPES[self.dtype], copy=False)  # syncs a CUDA stream
        t2 = time.perf_counter()
        compute_s = t2 - t1
        meta = {
            "backbone": backbone.meta.name, "weights_id": backbone.weights_id, "input_shape": list(frames.shape),
            "shape": list(array.shape), "dtype": self.dtype, "compute_s": round(compute_s, 4),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "format": FORMAT_VERSION,
        }
        _write_atomic(path.with_suffix(".json"), lambda f: f.write(json.dumps(meta, sort_keys=True).encode()))
        _write_atomic(path, lambda f: np.save(f, array, allow_pickle=False))
        self.stats.misses += 1
        self.stats.compute_s += compute_s
        self.stats.overhead_s += (t1 - t0) + (time.perf_counter() - t2)
        return out if self.dtype == "float32" else out.to(torch.float16).float()

    def _load(self, path: Path, frames: int, dim: int) -> torch.Tensor | None:
        """The entry at ``path`` as a float32 tensor, or None when absent; an unreadable entry is removed."""
        if not path.is_file():
            return None
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            if array.ndim != 4 or array.shape[0] != frames or array.shape[3] != dim or array.dtype != STORE_DTYPES[self.dtype]:
                raise ValueError(f"shape {array.shape} {array.dtype}, expected ({frames}, h, w, {dim}) {self.dtype}")
            return torch.from_numpy(np.array(array, dtype=np.float32))
        except (OSError, ValueError, EOFError) as e:
            log.warning("feature cache entry %s is unreadable (%s): recomputing it", path, e)
            self.stats.recovered += 1
            path.unlink(missing_ok=True)
            return None


def _safe(name: str) -> str:
    """A backbone name usable as one folder name (plugin names may hold anything)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def _write_atomic(path: Path, write: Callable[[Any], Any]) -> None:
    """Write ``path`` through a unique temp file and ``os.replace``; log (never raise) an OS error."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("feature cache: cannot write %s (%s); continuing without caching it", path, e)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _sidecar(npy: Path) -> dict[str, Any]:
    try:
        meta = json.loads(npy.with_suffix(".json").read_text())
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


# ----- inspection and clean-up (``bench cache ls|du|clear``) -------------------------------------
@dataclasses.dataclass
class Entry:
    """One cached entry as ``bench cache ls`` shows it."""

    path: Path
    backbone: str
    size: int
    meta: dict[str, Any]


def entries(root: Path, backbone: str | None = None) -> Iterator[Entry]:
    """Every entry under ``root`` (optionally of one backbone folder), sidecar metadata where present."""
    root = Path(root)
    if not root.is_dir():
        return
    folders = [root / _safe(backbone)] if backbone else sorted(p for p in root.iterdir() if p.is_dir())
    for folder in folders:
        for npy in sorted(folder.glob("??/*.npy")):
            try:
                size = npy.stat().st_size + (npy.with_suffix(".json").stat().st_size if npy.with_suffix(".json").exists() else 0)
            except FileNotFoundError:  # removed by a concurrent clear
                continue
            yield Entry(npy, folder.name, size, _sidecar(npy))


def usage(root: Path) -> dict[str, tuple[int, int]]:
    """``backbone folder -> (entries, bytes)``."""
    out: dict[str, tuple[int, int]] = {}
    for e in entries(root):
        n, b = out.get(e.backbone, (0, 0))
        out[e.backbone] = (n + 1, b + e.size)
    return out


def clear(root: Path, backbone: str | None = None) -> tuple[int, int]:
    """Remove every entry (or one backbone's), temp files included; return ``(entries, bytes)`` removed."""
    found = list(entries(root, backbone))
    target = Path(root) / _safe(backbone) if backbone else Path(root)
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    return len(found), sum(e.size for e in found)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def report(action: str, root: Path, backbone: str | None = None) -> str:
    """Text of ``bench cache ls`` (one line per entry), ``du`` (per backbone and total) or ``clear``."""
    if action == "clear":
        n, size = clear(root, backbone)
        return f"removed {n} entries ({_human(size)}) from {root}"
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
