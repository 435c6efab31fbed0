"""Consistency / separability diagnostics (Co-Settle, Liu et al., CVPR 2026).

Co-Settle argues that adapting an image encoder to video trades *temporal consistency* (the same
content in adjacent frames maps to nearby features) against *semantic separability* (different
videos stay apart). This task measures both on any folder of videos under one of two protocols,
named in the result (``details.protocol``):

``cal_metric`` (default)
    Exactly the authors' ``cal_metric.py`` (github.com/yafeng19/Co-Settle @764436e):
    ``num_frames`` (40) *consecutive* frames per video (the script reads folders of exactly 40
    extracted frames and skips other videos; we take the 40 frames around the video's middle and
    skip shorter videos, counted in ``details.skipped``); every token the model returns, the CLS
    token included where the method offers it (``method.frame_tokens``: the prefix tokens, then the same
    patch grid as ``frame_features`` row by row, which is read from it, so one encoder pass serves both;
    ``details.cls_token`` says whether it did); cycle accuracy on raw (not L2-normalised) tokens, CLS removed before pooling as
    the script does, averaged per batch of ``batch_size`` videos and then over batches. Built-in
    ``frozen``, ``cosettle`` and ``finetune`` offer it as the authors' model file of each ViT returns
    it to the script (P = 1 + h·w, 197 for a ViT-B/16 at 224 px, for frozen DINO, MoCo v3, iBOT, BLIP,
    DINOv2 and for MAE with the adapter, its CLS projected; h·w for the others: ``CAL_METRIC_WITHOUT_CLS`` in
    ``methods/frozen.py`` and ``methods/cosettle.py``); a CNN has none; other methods give patch tokens.
    Frames are normalised with each encoder's own statistics unless the backbone option
    ``input_norm: imagenet`` is set (the authors' code feeds ImageNet's to every encoder; the two differ
    for CLIP, BLIP and EfficientNet-Lite0 only).
``fair``
    Our normalisation choices: ``num_frames`` frames spread uniformly over the whole video, patch
    tokens only (no CLS, so every backbone has the same token set), cycle accuracy on L2-normalised
    tokens (as in the training loss), averaged over videos.

Figures (both protocols; ``cal_metric.py`` prints all but the margin):

- ``D_intra``: per adjacent frame pair (first and last ``edge_skip`` frames skipped) every token's
  minimum L2 distance to the next frame's tokens, the mean of the smallest 50 %, averaged over pairs,
  then videos (``compute_intra_video_metric``). ``D_intra_norm{p}`` divides each video's value by its
  own diameter (2 × the ``torch.quantile`` p-th distance of its tokens to their centre; max at 100).
- ``D_inter``: the middle frame (``T // 2``) of every video, ``inter_num_patches`` token positions
  drawn by ``torch.manual_seed(42); torch.randperm(P)`` (the script draws on its device; this is the
  CPU draw), the mean distance between matching positions over all video pairs
  (``compute_inter_video_metric``); ``D_inter_norm{p}`` divides by the diameter of those sampled
  tokens, where the script takes the farthest of the closest p % (not a quantile).
- ``diam_intra{p}``, ``diam_inter{p}``: the raw diameters (``compute_intra_video_diameter``, mean over
  videos; ``compute_inter_video_diameter``, over *all* middle-frame tokens, quantile).
- ``ratio``, ``ratio_norm{p}``: inter / intra, raw and normalised (the script's "Inter/Intra ratios").
- ``D_margin``: ``D_inter_norm{m} - gamma * D_intra_norm{m}`` at ``margin_percentile`` m — the paper's
  D, which its code never computes (the main metric).
- ``cycle_acc``: a 3-step walk t1 → t2 → t1 on 2×2-pooled tokens at five fixed time pairs.
- ``effective_rank``: exp(entropy of normalised singular values) / min(N, d) of middle-frame tokens.

Per-sample scores are per video (id: path relative to the folder): ``D_intra``, ``D_intra_norm`` (at
the margin percentile) and ``cycle_acc`` (the paired column; its mean is ``cycle_acc`` whenever the
videos fill their batches, always under ``fair``). ``D_inter`` and the margin are pairwise over videos
and have no per-video value.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from tqdm import tqdm

from benchmark.context import RunContext
from benchmark.data.frames import Preprocess, load_frames
from benchmark.data.video import list_videos, video_length
from benchmark.errors import UserError
from benchmark.schemas import NonNeg, NonNegFloat, Pos, PosFloat, Prob, Strict
from tasks.base import Task, TaskMeta, TaskOutput, relative_id
from benchmark.registry import TASKS

EPS = 1e-6
Percentile = Annotated[int, Field(gt=0, le=100)]


class TradeoffConfig(Strict):
    """configs/tasks/tradeoff.yaml (each key's source is commented there)."""

    protocol: Literal["cal_metric", "fair"]
    num_frames: Pos
    resize_short: Pos
    crop: Pos
    edge_skip: NonNeg
    nearest_fraction: Annotated[float, Field(gt=0, le=1)]
    inter_num_patches: Pos
    inter_patch_seed: NonNeg
    percentiles: Annotated[list[Percentile], Field(min_length=1)]
    margin_percentile: Percentile
    gamma: NonNegFloat  # D = D_inter - gamma * D_intra: a negative gamma would reward inconsistency
    cycle_time_pairs: Annotated[list[Annotated[list[Prob], Field(min_length=2, max_length=2)]], Field(min_length=1)]
    cycle_temperature: PosFloat
    cycle_pool: Pos
    batch_size: Pos

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if self.margin_percentile not in self.percentiles:
            raise ValueError(f"margin_percentile {self.margin_percentile} must be one of percentiles {self.percentiles}")
        if self.num_frames < 2 * self.edge_skip + 2:  # D_intra needs an adjacent pair between the skipped edges
            raise ValueError(f"num_frames ({self.num_frames}) must be at least 2 x edge_skip + 2 "
                             f"({2 * self.edge_skip + 2}): raise num_frames or lower edge_skip")
        return self


def intra_distance(feats: torch.Tensor, edge_skip: int, fraction: float) -> torch.Tensor:
    """Mean over adjacent pairs of the mean of the smallest ``fraction`` nearest-token distances.

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


def _tokens_match_features(method: Any) -> bool:
    """Whether ``method.frame_tokens`` speaks for its ``frame_features``: defined by the same class or below it.
    A subclass that changes the features and inherits ``frame_tokens`` would hand cal_metric its parent's tokens."""
    def owner(name: str) -> type | None:
        return next((c for c in type(method).__mro__ if name in vars(c)), None)

    tokens, features = owner("frame_tokens"), owner("frame_features")
    return tokens is not None and features is not None and issubclass(tokens, features)


def frame_indices(n: int, count: int, protocol: str) -> np.ndarray | None:
    """Frames read from an ``n``-frame video: ``count`` consecutive around the middle (``cal_metric``;
    None when the video is shorter, as the script skips it) or ``count`` spread uniformly (``fair``)."""
    if protocol == "fair":
        return np.linspace(0, n - 1, count).round().astype(int)
    if n < count:
        return None
    start = (n - count) // 2
    return np.arange(start, start + count)


def diagnostics(videos: list[tuple[torch.Tensor, torch.Tensor]], c: dict[str, Any]) -> tuple[dict[str, float], dict[str, list]]:
    """Every figure of the module docstring from each video's ``(tokens (T, P, D), grid (T, h, w, D))``.

    ``tokens`` are what the distances, diameters and rank read (with the CLS token first under
    ``cal_metric`` where there is one), ``grid`` the patch tokens the cycle walks on.

    Returns:
        the metrics and the per-video columns (without ids).
    """
    if len(videos) < 2:
        raise UserError(f"tradeoff needs at least 2 videos to measure D_inter; got {len(videos)}")
    percentiles, cal = list(c["percentiles"]), c["protocol"] == "cal_metric"
    intra, intra_norm, diam_intra, cycles, middles = [], {p: [] for p in percentiles}, {p: [] for p in percentiles}, [], []
    for tokens, grid in videos:
        d = float(intra_distance(tokens, c["edge_skip"], c["nearest_fraction"]))
        intra.append(d)
        for p, diam in diameters(tokens.flatten(0, 1), percentiles).items():
            intra_norm[p].append(d / (diam + 1e-8))
            diam_intra[p].append(diam)
        cycles.append(cycle_accuracy(grid, c["cycle_time_pairs"], c["cycle_temperature"], c["cycle_pool"], l2=not cal))
        middles.append(tokens[tokens.shape[0] // 2])
    mid = torch.stack(middles)  # (N, P, D)
    P = mid.shape[1]
    if P > c["inter_num_patches"]:
        mid_s = mid[:, torch.randperm(P, generator=torch.Generator().manual_seed(c["inter_patch_seed"]))[: c["inter_num_patches"]]]
    else:
        mid_s = mid
    pair = (mid_s.unsqueeze(1) - mid_s.unsqueeze(0)).norm(dim=-1).mean(-1)  # (N, N)
    inter = float(pair[torch.triu(torch.ones_like(pair, dtype=torch.bool), diagonal=1)].mean())
    inter_diam = diameters(mid_s.flatten(0, 1), percentiles, closest_fraction=True)
    m = {"D_intra": float(np.mean(intra)), "D_inter": inter}
    m["ratio"] = m["D_inter"] / m["D_intra"] if m["D_intra"] > 0 else float("inf")
    for p, raw in diameters(mid.flatten(0, 1), percentiles).items():
        m[f"D_intra_norm{p}"] = float(np.mean(intra_norm[p]))
        m[f"D_inter_norm{p}"] = inter / (inter_diam[p] + 1e-8)
        m[f"ratio_norm{p}"] = m[f"D_inter_norm{p}"] / m[f"D_intra_norm{p}"] if m[f"D_intra_norm{p}"] > 0 else float("inf")
        m[f"diam_intra{p}"] = float(np.mean(diam_intra[p]))
        m[f"diam_inter{p}"] = raw
    p = c["margin_percentile"]
    m["D_margin"] = m[f"D_inter_norm{p}"] - c["gamma"] * m[f"D_intra_norm{p}"]
    if cal:  # the script averages each batch's accuracy, then the batches
        b = int(c["batch_size"])
        m["cycle_acc"] = float(np.mean([np.mean(cycles[i : i + b]) for i in range(0, len(cycles), b)]))
    else:
        m["cycle_acc"] = float(np.mean(cycles))
    m["effective_rank"] = effective_rank(mid.flatten(0, 1))
    return m, {"D_intra": intra, "D_intra_norm": intra_norm[p], "cycle_acc": cycles}


@TASKS.register("tradeoff", "Co-Settle diagnostics: D_intra, D_inter, margin D, cycle accuracy, rank")
class Tradeoff(Task):
    """Co-Settle diagnostics: D_intra, D_inter, their ratios and diameters, margin D, cycle accuracy, rank."""

    meta = TaskMeta(
        name="tradeoff",
        dataset="clips",
        main_metric="D_margin",
        higher_is_better=True,
        protocol="Co-Settle cal_metric.py (Liu et al., CVPR 2026)",
        needs_labels=False,
        sample_unit="video",
        sample_metric="cycle_acc",
    )
    version = 3  # 2: protocols cal_metric (new default) and fair; ratios, raw diameters; per-video samples. 3: the
    # built-in methods give cal_metric the CLS token (frame_tokens), so frozen DINO etc. records change
    Config = TradeoffConfig

    def _video(self, method: Any, path: Any) -> tuple[torch.Tensor, torch.Tensor, bool] | None:
        """``(tokens, grid, CLS kept)`` of one video, or None when ``cal_metric`` skips it."""
        c = self.config
        idx = frame_indices(video_length(path), int(c["num_frames"]), c["protocol"])
        if idx is None:
            return None
        x = load_frames(path, idx, Preprocess(c["resize_short"], c["crop"], strict=True))  # decoded on a cache miss only
        # (T, P', D) with the prefix (CLS) tokens first, as the authors' eval_metric output; None: no CLS kept
        seq = method.frame_tokens(x) if c["protocol"] == "cal_metric" and _tokens_match_features(method) else None
        if seq is None:
            grid = method.frame_features(x).float().cpu()  # (T, h, w, D), from the feature cache where it has them
            return grid.flatten(1, 2), grid, False
        # the patch grid ends the sequence (crop x crop frames): taken from it rather than from a second encoder pass
        side, tokens = int(c["crop"]) // method.backbone.stride, seq.float().cpu()
        return tokens, tokens[:, -side * side:].unflatten(1, (side, side)), tokens.shape[1] > side * side

    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        c = self.config
        root = ctx.dataset_path(self.meta.dataset)
        ids, videos, cls_kept = [], [], set()
        paths = list_videos(root)
        for path in tqdm(paths, desc="tradeoff", disable=not ctx.progress, leave=False):
            got = self._video(method, path)
            if got is not None:
                ids.append(relative_id(path, root, str(path)))
                videos.append(got[:2])
                cls_kept.add(got[2])
        if len(videos) < 2:
            raise UserError(f"tradeoff needs at least 2 videos to measure D_inter; {root} has {len(videos)} "
                            f"with at least {c['num_frames']} frames: lower tradeoff.num_frames or add videos")
        metrics, per_video = diagnostics(videos, c)
        details = {"protocol": c["protocol"], "videos": len(videos), "skipped": len(paths) - len(videos),
                   "cls_token": cls_kept == {True}, "gamma": c["gamma"], "margin_percentile": c["margin_percentile"]}
        return TaskOutput(metrics, details=details, samples={"id": ids, **per_video})

    @classmethod
    def report_figure(cls, records: list[Any]) -> str | None:
        """Co-Settle's Figure 1 for ``bench report`` (see :func:`tradeoff_figure`), or a note where no
        record has a finite (D_intra, D_inter) pair."""
        from benchmark.report import png

        points = tradeoff_points(records)
        body = (png(tradeoff_figure(points)) if len(points) else
                '<p class="note">No tradeoff record has a finite (D_intra, D_inter) pair: nothing to plot.</p>')
        return f'<h2 id="tradeoff">Consistency / separability trade-off</h2>\n{body}'


def tradeoff_points(records: list[Any]) -> Any:
    """Mean and std over seeds of (D_intra_norm, D_inter_norm) per (backbone, method label), at the
    margin percentile: a DataFrame ``backbone, method, x, y, x_std, y_std, percentile, gamma``.

    A method run in several variants is one point per variant, labelled ``method [variant]``
    (:func:`benchmark.report.labels`); nothing is averaged across variants. NaN points are left out.
    """
    import math

    import pandas as pd

    from benchmark.report import labels

    rows = []
    records = [r for r in records if r.task == "tradeoff"]
    label = labels((r.method, r.variant) for r in records)
    for r in records:
        p = r.details.get("margin_percentile", 95)
        x, y = r.metrics.get(f"D_intra_norm{p}"), r.metrics.get(f"D_inter_norm{p}")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (x, y)):
            rows.append({"backbone": r.backbone_label, "method": label[r.method, r.variant], "x": x, "y": y,
                         "percentile": p, "gamma": r.details.get("gamma", 1.0)})
    if not rows:
        return pd.DataFrame(columns=["backbone", "method", "x", "y", "x_std", "y_std", "percentile", "gamma"])
    df = pd.DataFrame(rows)
    g = df.groupby(["backbone", "method"], sort=True)
    out = g[["x", "y"]].mean().join(g[["x", "y"]].std().add_suffix("_std")).join(g[["percentile", "gamma"]].first())
    return out.reset_index()


def tradeoff_figure(points: Any) -> Any:
    """Co-Settle Figure 1 (Liu et al., CVPR 2026) as a matplotlib ``Figure``: each (method, backbone) a
    point at (D_intra, D_inter), both normalised by the feature-space diameter, an arrow from each
    frozen backbone to each of its adapted versions. Down is more temporally consistent, up more
    separable; the dashed lines are levels of the margin D = D_inter - γ·D_intra."""
    from matplotlib.figure import Figure

    from benchmark.table import BASELINE

    fig = Figure(figsize=(7, 5.5))
    ax = fig.add_subplot()
    backbones = sorted(points["backbone"].unique())
    methods = sorted(points["method"].unique(), key=lambda m: (m != BASELINE, m))
    colours = {b: f"C{i % 10}" for i, b in enumerate(backbones)}
    markers = {m: "osD^v<>ph*"[i % 10] for i, m in enumerate(methods)}
    for _, p in points.iterrows():
        xerr, yerr = np.nan_to_num(p["x_std"]), np.nan_to_num(p["y_std"])
        ax.errorbar(p["x"], p["y"], xerr=xerr or None, yerr=yerr or None, fmt=markers[p["method"]],
                    color=colours[p["backbone"]], markersize=9, capsize=3 if xerr or yerr else 0,
                    mfc="white" if p["method"] == BASELINE else colours[p["backbone"]])
        ax.annotate(f"{p['method']}", (p["x"], p["y"]), textcoords="offset points", xytext=(7, 5), fontsize=8)
    for backbone in backbones:
        rows = points[points["backbone"] == backbone].set_index("method")
        if BASELINE not in rows.index:
            continue
        x0, y0 = rows.loc[BASELINE, ["x", "y"]]
        for method in rows.index.drop(BASELINE):
            ax.annotate("", xy=(rows.loc[method, "x"], rows.loc[method, "y"]), xytext=(x0, y0),
                        arrowprops={"arrowstyle": "->", "color": colours[backbone], "lw": 1.5, "shrinkA": 6, "shrinkB": 6})
    gamma = float(points["gamma"].iloc[0])
    ax.margins(0.12)  # room for the labels beside the outermost points
    xs = np.array(ax.get_xlim())
    for level in np.linspace(*_margin_range(points, gamma), 5):
        ax.plot(xs, level + gamma * xs, ls="--", lw=0.6, color="0.75", zorder=0)
    ax.set_xlim(*xs)
    for b in backbones:
        ax.plot([], [], "s", color=colours[b], label=b)
    for m in methods:
        ax.plot([], [], markers[m], color="0.3", mfc="white" if m == BASELINE else "0.3", label=m)
    ax.plot([], [], ls="--", lw=0.6, color="0.6", label=f"D = D_inter − {gamma:g}·D_intra")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)  # beside, never over points
    p = int(points["percentile"].iloc[0])
    ax.set_xlabel(f"D_intra (normalised, p{p})  ← more temporally consistent")
    ax.set_ylabel(f"D_inter (normalised, p{p})  → more separable")
    ax.set_title("Consistency / separability trade-off")
    ax.grid(alpha=0.3)
    return fig


def _margin_range(points: Any, gamma: float) -> tuple[float, float]:
    margins = points["y"] - gamma * points["x"]
    lo, hi = float(margins.min()), float(margins.max())
    pad = (hi - lo) * 0.5 or abs(hi) * 0.2 or 0.1
    return lo - pad, hi + pad
