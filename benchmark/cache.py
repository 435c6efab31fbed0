"""Cache of frozen-encoder tokens, shared by every method and every concurrent job.

Why: the frozen encoder's forward pass is the dominant cost of an evaluation, and it is the same for
every method that keeps the encoder frozen (``frozen``, Co-Settle's projection, AdViSe's input). A
second method on the same backbone should only pay for its own head and the task: not for the
encoder, and not for decoding either.

Key: the SHA-256 of (cache format, backbone name/class/stride/dim, ``weights_id``, a digest of the
backbone's actual parameter and buffer bytes, the backbone options, device type and autocast precision,
the stored dtype, and the input). The input is what determines the frames when the data layer says so
(:class:`benchmark.data.frames.FrameSource`: the files' path, size and mtime, the frame indices, the
resize/crop parameters and the decoders' versions), so a hit reads tokens without opening the video;
any other tensor is keyed on its shape, dtype and an XXH3-128 of its bytes (the fallback for frames
with no stable file identity). Hashing the parameters covers what ``weights_id`` cannot: random-init
backbones (all ``random-init``) and an encoder fine-tuned in place (``finetune``), which must never be
served the pristine encoder's tokens. The parameter digest is memoised on the tensors' version
counters, so it is recomputed only after an in-place update (an optimiser step, ``load_state_dict``).

Storage: one ``.npy`` per entry, ``<root>/<backbone>/<key[:2]>/<key>.npy`` (read with
``np.load(mmap_mode='r')``) and a ``.json`` sidecar (what and when, the compute seconds a hit saves,
for ``bench cache ls``); a :data:`MARKER` file at the root, without which ``bench cache clear|prune``
touch nothing (:mod:`benchmark.cache_admin`). float32 by default, so a cached result is bit-identical
to the uncached one and results never depend on the cache's state; ``dtype='float16'`` halves the
disk and is applied to misses too, for the same reason. Safe on a network file system: writes go to
a unique temp file in the same folder and are moved in with ``os.replace`` (atomic on NFS too), no
lock is taken (NFS locking is unreliable), the same key always carries the same bytes, so racing
writers are harmless, and hits refresh an entry's mtime at most hourly (LRU for ``bench cache
prune``; atime is unreliable on network mounts). No fsync: a torn entry after a crash fails to load
and is recomputed, like any corrupt entry. A cache problem (unreadable entry, full disk) is logged
and the tokens are computed; it never fails a run.

Used through one wrapper (:class:`CachedEncoder`) that the runner installs around
:meth:`methods.base.Method.encode_frames` (:func:`install`): methods and tasks never see it. Only
inference goes through it (eval mode): training paths feed randomly augmented frames to
``backbone.encode`` directly.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import operator
import os
import re
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xxhash

from benchmark.backbones.base import Backbone
from benchmark.data.frames import LazyFrames, materialize
from benchmark.atomic import write_atomic
from benchmark.errors import UserError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MARKER = ".i2v-bench-feature-cache"  # at the root of every folder this module writes: see benchmark.cache_admin
STORE_DTYPES = {"float32": np.float32, "float16": np.float16}
_DIGESTS: weakref.WeakKeyDictionary[Backbone, tuple[int, list[torch.Tensor], list[tuple[int, int]], str]] = \
    weakref.WeakKeyDictionary()
_REGISTRATIONS = [0]  # bumped whenever any module registers or replaces a parameter, buffer or submodule
_HOOKS: list[Any] = []  # torch's handles of the registration hooks, once installed


def _registered(*_: Any) -> None:
    _REGISTRATIONS[0] += 1


def install_hooks() -> None:
    """Count parameter/buffer/submodule registrations in every module (what lets :func:`weights_digest`
    skip re-walking a backbone). Global torch hooks, so installed explicitly where a run builds its
    cache (:class:`FeatureCache`), never at import; idempotent."""
    if not _HOOKS:
        _HOOKS.extend(register(_registered) for register in (
            torch.nn.modules.module.register_module_parameter_registration_hook,
            torch.nn.modules.module.register_module_buffer_registration_hook,
            torch.nn.modules.module.register_module_module_registration_hook))


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
    tensors = memo[1] if memo is not None and _HOOKS and memo[0] == _REGISTRATIONS[0] else [
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
        root: cache folder (:func:`default_root`); a :data:`MARKER` file there says the cache wrote it.
        options: the backbone's resolved options (part of the key: e.g. a ViT's ``num_heads``).
        dtype: ``float32`` (default, exact) or ``float16`` (half the disk, rounded tokens).
    """

    def __init__(self, root: Path | str, options: dict[str, Any] | None = None, dtype: str = "float32"):
        if dtype not in STORE_DTYPES:
            raise UserError(f"feature cache dtype {dtype!r} is unknown: use float32 or float16")
        install_hooks()
        self.root = Path(root)
        self.options = dict(options or {})
        self.dtype = dtype
        self.stats = CacheStats()
        self._marked = False

    def key(self, backbone: Backbone, frames: torch.Tensor | LazyFrames) -> str:
        """Hex key of the tokens of ``frames`` ``(T,3,H,W)`` under ``backbone``.

        Frames that carry a :class:`~benchmark.data.frames.FrameSource` are keyed on it (file
        identity, indices, preprocessing): no pixel is decoded. Others on an XXH3 of their bytes.
        """
        source = getattr(frames, "source", None)
        if source is not None:
            inp = ["source", len(frames), source.digest()]
        else:
            x = materialize(frames)
            h = xxhash.xxh3_128()  # hashed on every lookup: a fast non-cryptographic hash (~10x SHA-256 here)
            _update(h, x)
            inp = [list(x.shape), str(x.dtype), h.hexdigest()]
        ident = {
            "format": FORMAT_VERSION, "backbone": backbone.meta.name,
            "class": f"{type(backbone).__module__}.{type(backbone).__qualname__}",
            "weights_id": backbone.weights_id, "weights_digest": weights_digest(backbone),
            "stride": backbone.stride, "dim": backbone.dim, "options": self.options,
            "precision": precision(backbone), "store_dtype": self.dtype, "input": inp,
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def path(self, backbone_name: str, key: str) -> Path:
        return self.root / _safe(backbone_name) / key[:2] / f"{key}.npy"

    def tokens(self, backbone: Backbone, frames: torch.Tensor | LazyFrames,
               compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Tokens ``(T,h,w,C)`` float32 of ``frames``: from the cache, or ``compute(frames)`` stored for next time.

        ``compute`` must be the uncached encoder call; lazy frames are decoded only on a miss. Its
        result is returned on a miss (rounded through the stored dtype), on the device it computed
        on. A hit is returned on the CPU.
        """
        t0 = time.perf_counter()
        path = self.path(backbone.meta.name, self.key(backbone, frames))
        cached = self._load(path, len(frames), backbone.dim)
        if cached is not None:
            self.stats.hits += 1
            saved = _sidecar(path).get("compute_s")
            self.stats.seconds_saved += saved if isinstance(saved, (int, float)) else 0.0
            _touch(path)
            self.stats.overhead_s += time.perf_counter() - t0
            return cached
        t1 = time.perf_counter()
        x = materialize(frames)
        out = compute(x)
        array = out.detach().cpu().numpy().astype(STORE_DTYPES[self.dtype], copy=False)  # syncs a CUDA stream
        t2 = time.perf_counter()
        compute_s = t2 - t1
        meta = {
            "backbone": backbone.meta.name, "weights_id": backbone.weights_id, "input_shape": list(x.shape),
            "shape": list(array.shape), "dtype": self.dtype, "compute_s": round(compute_s, 4),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "format": FORMAT_VERSION,
        }
        self._mark()
        _write_atomic(path.with_suffix(".json"), lambda f: f.write(json.dumps(meta, sort_keys=True).encode()))
        _write_atomic(path, lambda f: np.save(f, array, allow_pickle=False))
        self.stats.misses += 1
        self.stats.compute_s += compute_s
        self.stats.overhead_s += (t1 - t0) + (time.perf_counter() - t2)
        return out if self.dtype == "float32" else out.to(torch.float16).float()

    def _mark(self) -> None:
        """Write the :data:`MARKER` at the root (once): only a marked folder is ever cleared or pruned."""
        if not self._marked and not (self.root / MARKER).is_file():
            _write_atomic(self.root / MARKER, lambda f: f.write(json.dumps({"format": FORMAT_VERSION}).encode()))
        self._marked = True

    def _load(self, path: Path, frames: int, dim: int) -> torch.Tensor | None:
        """The entry at ``path`` as a float32 tensor, or None when absent; an unreadable entry is removed."""
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            if array.ndim != 4 or array.shape[0] != frames or array.shape[3] != dim or array.dtype != STORE_DTYPES[self.dtype]:
                raise ValueError(f"shape {array.shape} {array.dtype}, expected ({frames}, h, w, {dim}) {self.dtype}")
            return torch.from_numpy(np.array(array, dtype=np.float32))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as e:
            log.warning("feature cache entry %s is unreadable (%s): recomputing it", path, e)
            self.stats.recovered += 1
            path.unlink(missing_ok=True)
            return None


class CachedEncoder:
    """The one wrapper around the encoder that serves cached tokens: what the runner installs.

    ``Method.encode_frames`` calls ``method.encoder_wrapper(backbone, frames, compute)`` when one is
    installed, so methods and tasks never see the cache. A backbone in train mode (dropout,
    batch-norm updates) is never cached.
    """

    def __init__(self, cache: FeatureCache):
        self.cache = cache

    def __call__(self, backbone: Backbone, frames: torch.Tensor | LazyFrames,
                 compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        if backbone.training:
            return compute(materialize(frames))
        device = next(backbone.parameters()).device
        return self.cache.tokens(backbone, frames, compute).to(device)


def install(method: Any, root: Path | str, options: dict[str, Any] | None = None, dtype: str = "float32") -> FeatureCache:
    """Wrap ``method``'s encoder calls with a :class:`FeatureCache` at ``root``; return the cache (for its stats)."""
    cache = FeatureCache(root, options, dtype)
    method.encoder_wrapper = CachedEncoder(cache)
    return cache


def _safe(name: str) -> str:
    """A backbone name usable as one folder name (plugin names may hold anything)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def _touch(path: Path) -> None:
    """Record a hit for ``bench cache prune`` (LRU on mtime): at most once an hour per entry, so
    that hits on a network file system do not each cost a metadata write."""
    try:
        if time.time() - path.stat().st_mtime > 3600:
            os.utime(path)
    except OSError:
        pass


def _write_atomic(path: Path, write: Callable[[Any], Any]) -> None:
    """:func:`benchmark.atomic.write_atomic`, logging (never raising) an OS error: a lost entry costs speed."""
    error = write_atomic(path, write)
    if error is not None:
        log.warning("feature cache: cannot write %s (%s); continuing without caching it", path, error)


def _sidecar(npy: Path) -> dict[str, Any]:
    try:
        meta = json.loads(npy.with_suffix(".json").read_text())
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}
