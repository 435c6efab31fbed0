"""Consistency / separability diagnostics (Co-Settle, Liu et al., CVPR 2026).

Co-Settle argues that adapting an image encoder to video trades *temporal consistency* (the same
content in adjacent frames maps to nearby features) against *semantic separability* (different
videos stay apart). This task measures both on any folder of videos, following the authors'
``cal_metric.py`` (github.com/yafeng19/Co-Settle) step by step:

- ``D_intra``: for each adjacent frame pair (first and last 3 frames skipped), every patch's minimum
  L2 distance to the next frame's patches; the mean of the smallest 50 %; averaged over pairs, then
  videos. Normalised per video by that video's feature-space diameter (2 × the p-th percentile of
  patch distances to the video's centre; ``torch.quantile``).
- ``D_inter``: middle frame of every video, 8 fixed random patch positions (seed 42), the mean L2
  distance between matching positions over all video pairs. Normalised by the diameter of all those
  patches (the authors take the farthest of the closest p % here, not a quantile; we follow them).
- ``D_margin``: ``D_inter_norm - gamma * D_intra_norm`` at ``margin_percentile`` — the paper's D,
  which its code never computes. Normalising first lets methods whose features differ in scale compare.
- ``cycle_acc``: a 3-step walk t1 → t2 → t1 on 2×2-pooled tokens at five fixed time pairs.
- ``effective_rank``: exp(entropy of normalised singular values) / min(N, d) of middle-frame tokens.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from benchmark.context import RunContext
from benchmark.errors import UserError
from tasks.base import Task, TaskMeta, TaskOutput
from benchmark.data.frames import Preprocess, load_frames
from benchmark.data.video import list_videos, video_length

EPS = 1e-6


def intra_distance(feats: torch.Tensor, edge_skip: int, fraction: float) -> torch.Tensor:
    """Mean over adjacent pairs of the mean of the smallest ``fraction`` nearest-patch distances.

    Args:
        feats: one video's tokens ``(T, P, D)``.
    """
    valid = feats[edge_skip : feats.shape[0] - edge_skip]
    if valid.shape[0] < 2:
        raise UserError(
            f"tradeoff needs more than {2 * edge_skip + 1} frames per video: raise num_frames or lower edge_skip"
        )
    nearest = torch.cdist(valid[:-1], valid[1:]).min(dim=-1).values  # (T-1, P)
    k = int(feats.shape[1] * fraction)
    return nearest.topk(k, dim=-1, largest=False).values.mean()


def diameters(points: torch.Tensor, percentiles: list[int], closest_fraction: bool = False) -> dict[int, float]:
    """2 × the radius holding ``p`` % of ``points`` around their centre.

    ``closest_fraction`` reproduces the authors' inter-video variant (farthest of the closest p %).
    """
    dist = (points - points.mean(0, keepdim=True)).norm(dim=-1)
    out = {}
    for p in percentiles:
        if p == 100:
            r = dist.max()
        elif closest_fraction:
            r = dist.sort().values[: int(len(dist) * p / 100.0)].max()
        else:
            r = torch.quantile(dist, p / 100.0)
        out[p] = 2 * float(r)
    return out


def cycle_accuracy(grid: torch.Tensor, pairs: list[list[float]], temperature: float, pool: int, l2: bool) -> float:
    """Accuracy of the walk t1 → t2 → t1 returning each node to itself (authors' compute_cycle_accuracy).

    Args:
        grid: one video's tokens ``(T, h, w, D)``.
    """
    T = grid.shape[0]
    idx = (torch.tensor(pairs) * T).long().clamp(max=T - 1)
    x = grid.permute(0, 3, 1, 2)
    if pool > 1:
        x = F.avg_pool2d(x, kernel_size=pool, stride=pool)
    nodes = x.flatten(2).transpose(1, 2)  # (T, N, D)
    if l2:
        nodes = F.normalize(nodes, dim=-1)
    accs = []
    for a, b in idx.tolist():
        seq = [nodes[a], nodes[b], nodes[a]]
        walk = None
        for u, v in zip(seq[:-1], seq[1:]):
            step = F.softmax(u @ v.T / temperature, dim=-1)
            walk = step if walk is None else walk @ step
        pred = torch.log(walk + EPS).argmax(dim=-1)
        accs.append((pred == torch.arange(len(pred))).float().mean().item())
    return float(np.mean(accs))


def effective_rank(tokens: torch.Tensor) -> float:
    """exp(Shannon entropy of normalised singular values) / min(N, d) (authors' compute_effective_rank)."""
    s = torch.linalg.svdvals(tokens.double())
    p = s / s.sum() + 1e-12
    return float(torch.exp(-(p * p.log()).sum()) / min(tokens.shape))


class Tradeoff(Task):
    """Co-Settle diagnostics: D_intra, D_inter, margin D, cycle accuracy, rank."""

    meta = TaskMeta(
        name="tradeoff",
        dataset="clips",
        main_metric="D_margin",
        higher_is_better=True,
        protocol="Co-Settle cal_metric.py (Liu et al., CVPR 2026)",
        needs_labels=False,
    )

    def _video_tokens(self, method, path) -> torch.Tensor:
        c = self.config
        n = video_length(path)
        idx = np.linspace(0, n - 1, c["num_frames"]).round().astype(int)
        x = load_frames(path, idx, Preprocess(c["resize_short"], c["crop"], strict=True))  # decoded on a cache miss only
        return method.frame_features(x).float().cpu()  # (T, h, w, D)

    def evaluate(self, method, ctx: RunContext) -> TaskOutput:
        c = self.config
        videos = list_videos(ctx.dataset_path(self.meta.dataset))
        if len(videos) < 2:
            raise UserError(f"tradeoff needs at least 2 videos to measure D_inter; {ctx.dataset_path('clips')} has {len(videos)}")
        intra, intra_norm = [], {p: [] for p in c["percentiles"]}
        cycles, middles = [], []
        for path in tqdm(videos, desc="tradeoff", disable=not ctx.progress, leave=False):
            grid = self._video_tokens(method, path)
            tokens = grid.flatten(1, 2)  # (T, P, D)
            d = float(intra_distance(tokens, c["edge_skip"], c["nearest_fraction"]))
            intra.append(d)
            for p, diam in diameters(tokens.flatten(0, 1), c["percentiles"]).items():
                intra_norm[p].append(d / (diam + 1e-8))
            cycles.append(cycle_accuracy(grid, c["cycle_time_pairs"], c["cycle_temperature"], c["cycle_pool"],
                                         c["cycle_l2_normalise"]))
            middles.append(tokens[tokens.shape[0] // 2])
        mid = torch.stack(middles)  # (N, P, D)
        gen = torch.Generator().manual_seed(c["inter_patch_seed"])
        if mid.shape[1] > c["inter_num_patches"]:
            mid_s = mid[:, torch.randperm(mid.shape[1], generator=gen)[: c["inter_num_patches"]]]
        else:
            mid_s = mid
        pair = (mid_s.unsqueeze(1) - mid_s.unsqueeze(0)).norm(dim=-1).mean(-1)  # (N, N)
        inter = float(pair[torch.triu(torch.ones_like(pair, dtype=torch.bool), diagonal=1)].mean())
        inter_diam = diameters(mid_s.flatten(0, 1), c["percentiles"], closest_fraction=True)
        metrics = {"D_intra": float(np.mean(intra)), "D_inter": inter}
        for p in c["percentiles"]:
            metrics[f"D_intra_norm{p}"] = float(np.mean(intra_norm[p]))
            metrics[f"D_inter_norm{p}"] = inter / (inter_diam[p] + 1e-8)
        p = c["margin_percentile"]
        if p not in c["percentiles"]:
            raise UserError(f"tradeoff.margin_percentile {p} must be one of tradeoff.percentiles {c['percentiles']}")
        metrics["D_margin"] = metrics[f"D_inter_norm{p}"] - c["gamma"] * metrics[f"D_intra_norm{p}"]
        metrics["cycle_acc"] = float(np.mean(cycles))
        metrics["effective_rank"] = effective_rank(mid.flatten(0, 1))
        return TaskOutput(metrics, details={"videos": len(videos), "gamma": c["gamma"], "margin_percentile": p})
