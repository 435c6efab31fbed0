"""Co-Settle diagnostics on constructed features with hand-computed answers, under both protocols."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.config import configure
from benchmark.errors import UserError
from tasks.tradeoff import Tradeoff, cycle_accuracy, diagnostics, diameters, effective_rank, frame_indices, intra_distance


def test_intra_distance_zero_for_static_video():
    f = torch.randn(1, 6, 5).repeat(10, 1, 1)
    assert float(intra_distance(f, edge_skip=3, fraction=0.5)) == 0.0


def test_intra_distance_is_mean_of_smallest_half():
    # 4 patches far apart on a line; each frame shifts patch i by d_i along a second axis.
    base = torch.tensor([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [300.0, 0.0]])
    shift = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, 4.0]])
    frames = torch.stack([base + t * shift for t in range(6)])
    # nearest neighbour of patch i in the next frame is itself moved by |d_i|; smallest half: 1 and 2 -> 1.5
    assert float(intra_distance(frames, edge_skip=1, fraction=0.5)) == pytest.approx(1.5)


def test_intra_distance_needs_frames():
    with pytest.raises(UserError, match="more than 7 frames"):
        intra_distance(torch.zeros(7, 4, 2), edge_skip=3, fraction=0.5)


def test_diameters_quantile_and_closest_fraction():
    pts = torch.tensor([[-1.0], [1.0], [-3.0], [3.0]])  # centre 0, distances 1, 1, 3, 3
    assert diameters(pts, [100])[100] == pytest.approx(6.0)
    assert diameters(pts, [50])[50] == pytest.approx(2 * 2.0)  # torch.quantile interpolates between 1 and 3
    assert diameters(pts, [50], closest_fraction=True)[50] == pytest.approx(2.0)  # farthest of the closest half


def test_cycle_accuracy_perfect_on_static_distinct_nodes_and_lower_when_shuffled():
    torch.manual_seed(0)
    grid = torch.randn(1, 4, 4, 32).repeat(10, 1, 1, 1)
    pairs = [[0.25, 0.4], [0.55, 0.7]]
    assert cycle_accuracy(grid, pairs, 0.03, pool=2, l2=True) == 1.0
    noisy = grid + 3.0 * torch.randn_like(grid)
    assert cycle_accuracy(noisy, pairs, 0.03, pool=2, l2=True) < 1.0


def test_effective_rank_extremes():
    assert effective_rank(torch.eye(4)) == pytest.approx(1.0)
    rank1 = torch.ones(6, 4)
    assert effective_rank(rank1) == pytest.approx(1 / 4, rel=1e-3)
    assert math.isfinite(effective_rank(torch.randn(50, 8)))


# ---- the two protocols on constructed features -------------------------------------------------

CFG = {"percentiles": [90, 95, 100], "edge_skip": 1, "nearest_fraction": 0.5, "cycle_time_pairs": [[0.25, 0.4], [0.55, 0.7]],
       "cycle_temperature": 0.03, "cycle_pool": 2, "inter_num_patches": 8, "inter_patch_seed": 42, "margin_percentile": 95,
       "gamma": 1.0, "batch_size": 32, "protocol": "cal_metric"}


def _line_video(offset: float, T: int = 7) -> torch.Tensor:
    """Grid ``(T, 2, 2, 2)``: 4 tokens 100 apart on a line, token i moving by i+1 per frame (D_intra 1.5)."""
    base = torch.tensor([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [300.0, 0.0]]) + torch.tensor([0.0, offset])
    shift = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, 4.0]])
    return torch.stack([base + t * shift for t in range(T)]).view(T, 2, 2, 2)


def _reference(tokens: list[torch.Tensor], p: int) -> tuple[float, float, float, float]:
    """Per-video and middle-frame diameters with numpy, as cal_metric.py defines them."""
    def diam(x, closest=False):
        d = np.linalg.norm(x - x.mean(0), axis=1)
        r = d.max() if p == 100 else (np.sort(d)[: int(len(d) * p / 100)].max() if closest else np.quantile(d, p / 100))
        return 2 * r
    mid = np.concatenate([t[t.shape[0] // 2].numpy() for t in tokens])
    return np.mean([diam(t.flatten(0, 1).numpy()) for t in tokens]), diam(mid), diam(mid, closest=True), \
        np.mean([1.5 / diam(t.flatten(0, 1).numpy()) for t in tokens])


@pytest.mark.parametrize("protocol", ["cal_metric", "fair"])
def test_known_intra_inter_ratios_and_diameters(protocol):
    videos = [(g.flatten(1, 2), g) for g in (_line_video(0.0), _line_video(1000.0))]
    m, per_video = diagnostics(videos, {**CFG, "protocol": protocol})
    assert m["D_intra"] == pytest.approx(1.5) and per_video["D_intra"] == pytest.approx([1.5, 1.5])
    assert m["D_inter"] == pytest.approx(1000.0)  # every matching position is 1000 apart
    assert m["ratio"] == pytest.approx(1000.0 / 1.5)
    for p in CFG["percentiles"]:
        diam_intra, diam_inter, inter_closest, intra_norm = _reference([g for g, _ in videos], p)
        assert m[f"diam_intra{p}"] == pytest.approx(diam_intra) and m[f"diam_inter{p}"] == pytest.approx(diam_inter)
        assert m[f"D_intra_norm{p}"] == pytest.approx(intra_norm)
        assert m[f"D_inter_norm{p}"] == pytest.approx(1000.0 / inter_closest)
        assert m[f"ratio_norm{p}"] == pytest.approx(m[f"D_inter_norm{p}"] / m[f"D_intra_norm{p}"])
    assert m["D_margin"] == pytest.approx(m["D_inter_norm95"] - m["D_intra_norm95"])
    assert per_video["D_intra_norm"] == pytest.approx([1.5 / (_reference([g], 95)[0]) for g, _ in videos])


def test_a_static_cls_token_counts_in_the_distances():
    """cal_metric keeps the CLS token: a token that never moves is the nearest-distance 0 of every pair."""
    videos = []
    for g in (_line_video(0.0), _line_video(1000.0)):
        cls = torch.full((g.shape[0], 1, 2), 5000.0)
        videos.append((torch.cat([cls, g.flatten(1, 2)], 1), g))
    m, _ = diagnostics(videos, CFG)
    assert m["D_intra"] == pytest.approx(0.5)  # 5 tokens: the smallest int(2.5) = 2 distances are 0 and 1
    assert m["D_inter"] == pytest.approx(4 * 1000.0 / 5)  # the CLS position is the same in both videos


def _static(nodes: torch.Tensor, T: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = nodes.view(1, 1, -1, nodes.shape[-1]).repeat(T, 1, 1, 1)
    return g.flatten(1, 2), g


def test_cycle_raw_tokens_under_cal_metric_l2_under_fair_and_batch_averaging():
    # raw dot products walk (1, 1) to the long (10, 0) and stay there; cosine brings it back
    trap = torch.tensor([[10.0, 0.0], [1.0, 1.0]])
    assert cycle_accuracy(_static(trap)[1], CFG["cycle_time_pairs"], 0.03, pool=1, l2=False) == 0.5
    assert cycle_accuracy(_static(trap)[1], CFG["cycle_time_pairs"], 0.03, pool=1, l2=True) == 1.0
    good = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    videos = [_static(good), _static(good + 0.01), _static(trap)]
    cfg = {**CFG, "cycle_pool": 1, "batch_size": 2, "edge_skip": 3}
    cal, per_video = diagnostics(videos, cfg)
    assert per_video["cycle_acc"] == [1.0, 1.0, 0.5]
    assert cal["cycle_acc"] == pytest.approx((1.0 + 0.5) / 2)  # batches [1, 1] and [0.5], as cal_metric.py averages
    fair, _ = diagnostics(videos, {**cfg, "protocol": "fair"})
    assert fair["cycle_acc"] == 1.0


def test_inter_positions_are_the_scripts_seeded_draw():
    T, P = 5, 197
    a = torch.zeros(T, P, 1)
    b = torch.arange(P, dtype=torch.float32).view(1, P, 1).repeat(T, 1, 1)  # position j differs by j
    grid = torch.zeros(T, 2, 2, 1)
    m, _ = diagnostics([(a, grid), (b, grid)], {**CFG, "edge_skip": 1})
    state = torch.get_rng_state()
    torch.manual_seed(42)  # cal_metric.py: torch.manual_seed(42); torch.randperm(P)[:8]
    expected = torch.randperm(P)[:8].float().mean().item()
    torch.set_rng_state(state)
    assert m["D_inter"] == pytest.approx(expected)


def test_frames_consecutive_for_cal_metric_uniform_for_fair():
    assert frame_indices(100, 40, "cal_metric").tolist() == list(range(30, 70))
    assert frame_indices(39, 40, "cal_metric") is None  # the script skips videos without 40 frames
    fair = frame_indices(100, 40, "fair")
    assert fair[0] == 0 and fair[-1] == 99 and len(fair) == 40


def test_tradeoff_end_to_end_names_protocol_keeps_cls_and_gives_per_video_samples(toy_root, tmp_path):
    from benchmark.backbones import build_backbone
    from methods.frozen import Frozen
    from tests.tasks.toy_setup import check_samples, toy_ctx, toy_task

    class WithCls(Frozen):
        def frame_tokens(self, frames):  # a CLS token first, as a ViT's output
            grid = self.frame_features(frames).flatten(1, 2)
            return torch.cat([grid.mean(1, keepdim=True), grid], 1)

    method = WithCls(build_backbone("efficientnet_lite0"), {})
    outs = {}
    for protocol in ("cal_metric", "fair"):
        task = toy_task("tradeoff", protocol=protocol, num_frames=12)
        outs[protocol] = out = task.evaluate(method, toy_ctx(toy_root, tmp_path))
        check_samples(task, out, out.details["videos"], metric="cycle_acc")  # the margin has no per-video value
        assert out.details["protocol"] == protocol and out.details["cls_token"] == (protocol == "cal_metric")
    assert outs["cal_metric"].metrics["D_intra"] != pytest.approx(outs["fair"].metrics["D_intra"])
    with pytest.raises(UserError, match="protocol='paper' is refused: input should be 'cal_metric' or 'fair'"):
        configure("task", "tradeoff", Tradeoff, {"protocol": "paper"})
