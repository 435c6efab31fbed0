"""Weights that fetch themselves: `bench weights` and the on-demand fetch, against a loopback server.

A small HTTP server on 127.0.0.1 (a thread, stopped at teardown and by a timer) serves a tiny MAE
checkpoint in the authors' layout under the release file's name; ``$I2V_BENCH_WEIGHTS_MIRROR`` points
the fetch at it. It can cut a transfer after N bytes and can ignore ``Range``, so resume and restart
are exercised for real.
"""
from __future__ import annotations

import hashlib
import json
import io
import re
import threading
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import timm
import torch

from benchmark.backbones import build_backbone, vit
from benchmark.cli import main
from benchmark.errors import UserError

FILE = vit.MAE.meta.weights_file


@dataclass
class Loopback:
    files: dict[str, bytes]
    url: str = ""
    cut: int | None = None  # close the connection after this many body bytes
    honour_range: bool = True
    etag: str = ""  # the hub's sha256 for its blob; "" = the file's true digest
    requests: list[tuple[str, str | None]] = field(default_factory=list)


def _handler(state: Loopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5

        def log_message(self, *args):  # keep pytest's output clean
            pass

        def do_HEAD(self):  # the Hugging Face hub's file metadata (what hf_hub_download asks first)
            data = state.files.get(self.path.lstrip("/"))
            self.send_response(404 if data is None else 200)
            self.send_header("X-Repo-Commit", "0" * 40)
            if data is None:
                self.send_header("X-Error-Code", "EntryNotFound")
            else:
                self.send_header("X-Linked-Etag", f'"{state.etag or hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()

        def do_GET(self):
            state.requests.append((self.path, self.headers.get("Range")))
            data = state.files.get(self.path.lstrip("/"))
            if data is None:
                self.send_error(404)
                return
            m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            start = int(m.group(1)) if m and state.honour_range else 0
            if start >= len(data) > 0 and m:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.cut is not None:
                body, self.close_connection = body[: state.cut], True
            self.wfile.write(body)

    return Handler


@pytest.fixture(scope="module")
def checkpoint() -> bytes:
    """A tiny ViT in MAE's release layout (``{"model": state_dict}`` plus decoder keys it drops)."""
    torch.manual_seed(0)
    model = timm.create_model("vit_base_patch16_224", pretrained=False, embed_dim=64, depth=2, num_heads=1, num_classes=0)
    buf = io.BytesIO()
    torch.save({"model": {**model.state_dict(), "decoder_embed.weight": torch.zeros(8, 64)}}, buf)
    return buf.getvalue()


@pytest.fixture
def server(checkpoint, tmp_path, monkeypatch):
    """The loopback mirror, an empty weights folder and hub cache; the network allowed (conftest forbids it)."""
    from huggingface_hub import constants

    state = Loopback({FILE: checkpoint})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    guard = threading.Timer(120, httpd.shutdown)  # bounded even if teardown never runs
    guard.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("I2V_BENCH_WEIGHTS_MIRROR", state.url + "/")
    monkeypatch.setenv("I2V_BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield state
    guard.cancel()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("pinned", [False, True], ids=["first-use", "pinned"])
def test_fetch_installs_a_loadable_file_with_its_digest(server, checkpoint, tmp_path, monkeypatch, capsys, pinned):
    digest = hashlib.sha256(checkpoint).hexdigest()
    if pinned:
        monkeypatch.setattr(vit.MAE, "meta", replace(vit.MAE.meta, weights_sha256=digest))
    assert main(["weights", "fetch", "mae"]) == 0
    out, err = capsys.readouterr()
    dest = tmp_path / "weights" / FILE
    assert dest.read_bytes() == checkpoint
    assert digest in out and ("matches the pinned digest" if pinned else "recorded in") in out
    sums = tmp_path / "weights" / "SHA256SUMS"
    assert (not sums.exists()) if pinned else sums.read_text() == f"{digest}  {FILE}\n"
    assert not list(dest.parent.glob("*.part")) and "\r" not in err  # no progress bar off a TTY
    backbone = build_backbone("mae")
    assert backbone.weights_id == f"{FILE}@sha256:{digest[:12]}"
    assert main(["weights", "verify", "mae"]) == 0
    assert "ok (sha256" in capsys.readouterr().out


def test_bad_digest_is_not_installed(server, tmp_path, monkeypatch, capsys):
    wrong = "0" * 64
    monkeypatch.setattr(vit.MAE, "meta", replace(vit.MAE.meta, weights_sha256=wrong))
    assert main(["weights", "fetch", "mae"]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and f"{server.url}/{FILE}" in err[0] and wrong in err[0] and "not installed" in err[0]
    folder = tmp_path / "weights"
    assert not (folder / FILE).exists() and not (folder / f"{FILE}.part").exists()
    assert (folder / f"{FILE}.bad").is_file() and not (folder / "SHA256SUMS").exists()
    with pytest.raises(UserError, match="no weights for backbone 'mae'.*fetching it failed: .*does not match"):
        build_backbone("mae")  # a run does not load it either, and says why in the usual line


def test_interrupted_transfer_resumes_with_range(server, checkpoint, tmp_path, capsys):
    server.cut = 100_000
    assert main(["weights", "fetch", "mae"]) == 2
    err = _lines(capsys.readouterr().err)
    part = tmp_path / "weights" / f"{FILE}.part"
    assert len(err) == 1 and f"stopped at 100000 of {len(checkpoint)} bytes" in err[0] and str(part) in err[0]
    assert part.stat().st_size == 100_000 and not (tmp_path / "weights" / FILE).exists()
    server.cut = None
    assert main(["weights", "fetch", "mae"]) == 0
    assert server.requests[-1] == (f"/{FILE}", "bytes=100000-")
    assert (tmp_path / "weights" / FILE).read_bytes() == checkpoint and not part.exists()
    assert hashlib.sha256(checkpoint).hexdigest() in capsys.readouterr().out


def test_server_ignoring_range_restarts_cleanly(server, checkpoint, tmp_path, capsys):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / f"{FILE}.part").write_bytes(b"\xff" * 5000)  # not a prefix: appending to it would corrupt the file
    server.honour_range = False
    assert main(["weights", "fetch", "mae"]) == 0
    assert server.requests == [(f"/{FILE}", "bytes=5000-")]
    assert (folder / FILE).read_bytes() == checkpoint


def test_offline_gives_the_one_line_message_and_downloads_nothing(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["weights", "fetch", "mae"]) == 2
    assert len(_lines(capsys.readouterr().err)) == 1
    with pytest.raises(UserError, match="no weights for backbone 'mae'.*bench weights fetch mae"):
        build_backbone("mae")
    assert server.requests == [] and not (tmp_path / "weights").exists()


def test_run_offline_flag_keeps_the_message(server, toy_root, tmp_path, capsys):
    rc = main(["run", "--method", "frozen", "--backbone", "mae", "--tasks", "davis", "--data-root", str(toy_root),
               "--results", str(tmp_path / "results"), "--offline"])
    err = _lines(capsys.readouterr().err)
    assert rc == 2 and len(err) == 1 and "no weights for backbone 'mae'" in err[0]
    assert server.requests == [] and not list((tmp_path / "results").rglob("*.json"))


def test_run_fetches_on_demand(server, checkpoint, tmp_path, capsys):
    backbone = build_backbone("mae")
    assert backbone.weights_id == f"{FILE}@sha256:{hashlib.sha256(checkpoint).hexdigest()[:12]}"
    assert "fetched mae" in capsys.readouterr().err and len(server.requests) == 1


def test_a_run_that_fetches_its_weights_records_their_digest(server, checkpoint, toy_root, tmp_path, capsys):
    """The identity is resolved before the backbone is built; weights fetched while building it must still
    join it, or the next run would find its own record stale and recompute it."""
    args = ["run", "--method", "frozen", "--backbone", "mae", "--tasks", "tradeoff", "--data-root", str(toy_root),
            "--results", str(tmp_path / "results"), "--set", "tradeoff.num_frames=8", "--set", "tradeoff.resize_short=64",
            "--set", "tradeoff.crop=64", "--no-progress"]
    assert main(args) == 0 and len(server.requests) == 1
    (path,) = (tmp_path / "results").glob("frozen/mae/tradeoff/*/seed0.json")
    assert json.loads(path.read_text())["weights_digest"] == hashlib.sha256(checkpoint).hexdigest()
    before = path.read_bytes()
    capsys.readouterr()
    assert main(args) == 0 and "present" in capsys.readouterr().err
    assert path.read_bytes() == before and main(["list", "results", "--stale", "--results", str(tmp_path / "results")]) == 0
    assert "frozen" not in capsys.readouterr().out


def test_a_damaged_file_is_neither_called_present_nor_loaded(server, toy_root, tmp_path, capsys):
    assert main(["weights", "fetch", "mae"]) == 0
    with open(tmp_path / "weights" / FILE, "ab") as f:
        f.write(b"\0")
    capsys.readouterr()
    assert main(["weights", "fetch", "mae"]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and FILE in err[0] and "delete it and fetch again" in err[0]
    assert main(["run", "--method", "frozen", "--backbone", "mae", "--tasks", "tradeoff", "--data-root", str(toy_root),
                 "--results", str(tmp_path / "results")]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "damaged or replaced" in err[0] and not (tmp_path / "results").exists()


def test_verify_reports_a_changed_file(server, tmp_path, capsys):
    assert main(["weights", "fetch", "mae"]) == 0
    dest = tmp_path / "weights" / FILE
    data = bytearray(dest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    dest.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["weights", "verify"]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and str(dest) in err[0] and "recorded" in err[0]


@pytest.mark.parametrize("lying", [False, True], ids=["true-etag", "wrong-etag"])
def test_hub_weights_land_in_the_hub_cache_checked_by_blob_digest(server, checkpoint, tmp_path, monkeypatch, capsys, lying):
    """clip has no direct authors' file: its source is timm's hub id, fetched with huggingface_hub."""
    from huggingface_hub import constants

    monkeypatch.delenv("I2V_BENCH_WEIGHTS_MIRROR")
    monkeypatch.setattr(constants, "ENDPOINT", server.url)  # what HF_ENDPOINT sets at import
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    server.files = {"timm/vit_base_patch16_clip_224.openai/resolve/main/model.safetensors": checkpoint}
    server.etag = "e" * 64 if lying else ""
    code = main(["weights", "fetch", "clip"])
    out, err = capsys.readouterr()
    if lying:
        assert code == 2 and len(_lines(err)) == 1 and "does not hash to its blob name" in err and "removed" in err
        assert not [p for p in (tmp_path / "hub").rglob("*") if p.is_file() and p.stat().st_size == len(checkpoint)]
        return
    digest = hashlib.sha256(checkpoint).hexdigest()
    assert code == 0 and digest[:12] in out and "(hub)" in out
    blob = tmp_path / "hub" / "models--timm--vit_base_patch16_clip_224.openai" / "blobs" / digest
    assert blob.read_bytes() == checkpoint
    assert main(["weights", "verify", "clip"]) == 0 and "ok (sha256" in capsys.readouterr().out
