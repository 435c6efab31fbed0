"""Label propagation through space-time feature affinities: one engine for DAVIS, VIP and JHMDB.

Every dense-correspondence paper since Wang et al. (2019) evaluates frozen features the same way:
the labels of the first frame are carried to frame ``t`` by a k-nearest-neighbour vote over the
features of a few *context* frames (the first frame plus the previous ones), restricted to a spatial
neighbourhood, weighted by a temperature softmax of cosine similarities. Three published protocols
differ only in constants and small rules, reproduced as presets (:mod:`tasks.presets`, with
their sources); this module is the engine they parameterise.

Labels are propagated at feature resolution as soft maps (each frame's *soft* prediction becomes a
context label, as all three codes do) and upsampled bilinearly to the annotation resolution.

Speed (why this is not the reference loop): features are L2-normalised once per video; the query
grid is cut into square tiles, and for every radius-restricted context frame only the key window
that the tile's neighbourhoods can reach is multiplied (a slice of the frame, so the work shrinks
with the radius); the neighbourhood mask of each tile is built once per (grid, radius) with tensor
ops and cached; top-k runs per context frame on the tile's window and then once over the pooled
candidates, which is exactly the top-k over all context keys (a frame repeated ``m`` times
contributes its candidates ``m`` times, as CRW's padded bank does). Memory is one tile × window
matrix at a time, independent of the number of context frames. :func:`propagate_dense` is the
straightforward reference (one full affinity per target frame, as DINO's script computes it);
``benchmark/perf/propagation.py`` and the tests check that both give the same predictions.
"""
from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmark.errors import UserError
from tasks.presets import PRESETS, PropagationConfig, input_size, resolve  # noqa: F401  (engine constants; re-exported)

MASKED = -1e10  # CRW/T-CORE add this to out-of-radius affinities before top-k (``D[D==0] = -1e10``)


# ----------------------------------------------------------------------------------------------
# Label maps at feature resolution
# ----------------------------------------------------------------------------------------------


def labels_to_grid(index_map: torch.Tensor, classes: torch.Tensor, grid: tuple[int, int], mode: str,
                   rule: str = "cv2") -> torch.Tensor:
    """An index map ``(H, W)`` → soft one-hot ``(h, w, L)`` over ``classes`` at the feature grid.

    ``bilinear`` resizes the one-hot maps like cv2's ``INTER_LINEAR`` (half-pixel centres, no
    antialiasing), as CRW's ``vos.py`` does; ``nearest`` resizes the index map by the nearest ``rule``
    (:func:`nearest_indices`; ``pil`` is DINO's ``read_seg``: ``seg.resize(..., 0)``).
    """
    if mode == "bilinear":
        onehot = (index_map[None] == classes.view(-1, 1, 1)).float()[None]
        out = F.interpolate(onehot, size=grid, mode="bilinear", align_corners=False, antialias=False)[0]
        return out.permute(1, 2, 0).contiguous()
    rows, cols = (nearest_indices(src, dst, rule, index_map.device) for src, dst in zip(index_map.shape, grid))
    return (index_map[rows][:, cols][..., None] == classes.view(1, 1, -1)).float()


def grid_to_labels(soft: torch.Tensor, size: tuple[int, int], norm_mask: bool,
                   frame: tuple[int, int] | None = None, rule: str = "cv2") -> torch.Tensor:
    """Soft maps ``(h, w, L)`` → class positions ``(H, W)`` (long).

    Bilinear upsampling to ``frame`` (the encoder's input size; ``size`` when None), the optional
    ``norm_mask``, the argmax, and, where ``frame`` differs from ``size``, a nearest resize of the
    index map to ``size`` by ``rule`` (:func:`nearest_indices`: ``cv2`` as T-CORE's ``vos.py``,
    ``pil`` as DINO's ``Image.fromarray(seg).resize((ori_w, ori_h), 0)``).
    """
    frame = tuple(frame or size)
    up = F.interpolate(soft.permute(2, 0, 1)[None], size=frame, mode="bilinear", align_corners=False)[0]
    if norm_mask:  # DINO norm_mask(): per class, (x - min) / max, only where the map has a positive max
        lo = up.amin(dim=(1, 2), keepdim=True)
        hi = (up - lo).amax(dim=(1, 2), keepdim=True)
        keep = up.amax(dim=(1, 2), keepdim=True) > 0
        up = torch.where(keep, (up - lo) / hi.clamp_min(1e-12), up)
    labels = up.permute(1, 2, 0).contiguous().argmax(dim=-1)  # same first-max ties; ~8x faster on CPU than dim 0
    if frame == tuple(size):
        return labels
    rows, cols = (nearest_indices(src, dst, rule, labels.device) for src, dst in zip(frame, size))
    return labels[rows][:, cols]


def nearest_indices(src: int, dst: int, rule: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """Source index of each of ``dst`` outputs of a nearest-neighbour resize along one axis.

    ``cv2`` is ``cv2.resize(INTER_NEAREST)``: ``min(floor(x * (1 / (dst / src))), src - 1)`` in double
    precision (torch's own ``nearest`` computes the scale in float32 and picks a different pixel where
    ``x * src / dst`` is an integer). ``pil`` is ``PIL.Image.resize(..., NEAREST)``, read from PIL
    itself: Pillow's ``ImagingScaleAffine`` (``src/libImaging/Geometry.c``) accumulates the source
    position ``xo += src / dst`` from ``src / dst / 2`` in double, so the closed form
    ``floor((x + 0.5) * src / dst)`` misses its rounding in 7162 of the 39601 size pairs 1..199 (and
    torch's ``nearest-exact`` in 7284); resizing a one-row ``arange`` image gives the table exactly.
    """
    return torch.tensor(_nearest_table(src, dst, rule), device=device)


@functools.lru_cache(maxsize=64)
def _nearest_table(src: int, dst: int, rule: str) -> tuple[int, ...]:
    if rule == "pil":
        ramp = Image.fromarray(np.arange(src, dtype=np.int32)[None])  # mode "I": any index is exact
        return tuple(np.asarray(ramp.resize((dst, 1), Image.NEAREST))[0].tolist())
    inverse = 1.0 / (dst / src)
    return tuple(min(math.floor(x * inverse), src - 1) for x in range(dst))


def keypoint_heatmaps(points: torch.Tensor, grid: tuple[int, int], sigma: float, mode: str = "crw") -> torch.Tensor:
    """Keypoints ``(J, 2)`` in grid coordinates (x, y) → heatmaps ``(h, w, J+1)``; channel 0 is
    background, 1 where no joint reaches.

    ``crw`` draws CRW's ``draw_labelmap_np`` (``code/data/jhmdb.py``): a patch of ``ceil(6σ+1)``
    cells from ``int(p - 3σ)`` (truncation toward zero), holding ``exp(-d²/2σ²)`` of the integer
    offset ``d`` from patch index ``(6σ+1) // 2`` — for σ = 0.5 a 4×4 patch whose peak sits on the
    cell ``round(p)`` (``int(p - 1.5) + 2``, so one cell further in for ``p < 1.5``), offsets −2..+1.
    ``exact`` evaluates the Gaussian at the sub-cell position, truncated at 3σ.
    """
    h, w = grid
    cells = (torch.arange(h, dtype=torch.float64).view(1, h, 1), torch.arange(w, dtype=torch.float64).view(1, 1, w))
    pts = points.double()
    if mode == "exact":
        dy, dx = cells[0] - pts[:, 1].view(-1, 1, 1), cells[1] - pts[:, 0].view(-1, 1, 1)
        inside = (dx.abs() <= 3 * sigma) & (dy.abs() <= 3 * sigma)
    else:
        size = 6 * sigma + 1
        ul = torch.trunc(pts - 3 * sigma)  # (J, 2) first patch cell, x then y
        br = torch.trunc(pts + 3 * sigma + 1)
        span = math.ceil(size)
        iy, ix = cells[0] - ul[:, 1].view(-1, 1, 1), cells[1] - ul[:, 0].view(-1, 1, 1)  # patch indices
        inside = ((iy >= 0) & (iy < span) & (cells[0] < br[:, 1].view(-1, 1, 1))
                  & (ix >= 0) & (ix < span) & (cells[1] < br[:, 0].view(-1, 1, 1)))
        dy, dx = iy - size // 2, ix - size // 2
    g = torch.where(inside, torch.exp(-(dx**2 + dy**2) / (2 * sigma**2)), torch.zeros((), dtype=torch.float64)).float()
    background = (g.sum(0) == 0).float()[None]
    return torch.cat([background, g]).permute(1, 2, 0).contiguous()


def decode_keypoints(soft: torch.Tensor, topk: int) -> torch.Tensor:
    """Propagated heatmaps ``(h, w, J+1)`` → keypoints ``(J, 2)`` in grid coordinates (NaN if lost).

    The position is the value-weighted mean of the ``topk`` strongest cells (CRW ``process_pose``).
    """
    h, w, _ = soft.shape
    flat = soft[..., 1:].reshape(h * w, -1)
    vals, ids = flat.topk(min(topk, h * w), dim=0)
    total = vals.sum(0)
    weights = vals / total.clamp_min(1e-12)
    xy = torch.stack([(ids % w).float(), (ids // w).float()], dim=-1)  # (k, J, 2)
    out = (xy * weights[..., None]).sum(0)
    out[flat.sum(0) <= 0] = float("nan")
    return out


# ----------------------------------------------------------------------------------------------
# Context frames and neighbourhoods
# ----------------------------------------------------------------------------------------------


def context_frames(t: int, cfg: PropagationConfig) -> list[tuple[int, int, bool]]:
    """Context of target frame ``t`` as ``(frame, multiplicity, radius_restricted)`` entries.

    CRW/T-CORE (``context_index_bank``): frame 0 unrestricted as long-term memory, then the frames
    ``t-n .. t-1`` of a bank padded with ``n`` copies of frame 0 (so frame 0 repeats for ``t <= n``).
    DINO: frame 0 plus up to ``n`` previous frames from 1 on, all restricted.
    """
    out: list[tuple[int, int, bool]] = []
    if cfg.long_memory:
        out.append((0, 1, cfg.mask_long_memory))
    if cfg.repeat_first:
        prev = [max(0, i) for i in range(t - cfg.n_context, t)]
    else:
        start = 1 if cfg.long_memory else 0
        prev = list(range(max(start, t - cfg.n_context), t))
    out.extend((f, m, True) for f, m in sorted(Counter(prev).items()))
    return out


def check_topk(cfg: PropagationConfig, frames: int, tokens: int) -> None:
    """Refuse a ``topk`` larger than every candidate token a target frame can vote from (``tokens`` per
    frame times its context): it silently degrades to "everything votes" (J&F 0.0 at topk=100000)."""
    pool = tokens * max((sum(m for _, m, _ in context_frames(t, cfg)) for t in range(1, frames)), default=0)
    if frames > 1 and cfg.topk > pool:
        raise UserError(f"propagation topk={cfg.topk} exceeds the {pool} candidate tokens a frame votes from "
                        f"({tokens} per frame of context): set <task>.propagation.topk to at most {pool} (presets: 5-10)")


def _reach(radius: float, metric: str) -> int:
    """Largest |offset| (cells, per axis) inside the neighbourhood."""
    return math.ceil(radius) - 1 if metric == "euclidean" else math.floor(radius)


def _within(dy: torch.Tensor, dx: torch.Tensor, radius: float, metric: str) -> torch.Tensor:
    """Whether cell offsets lie in the neighbourhood: CRW ``D < radius`` or DINO's square."""
    dy, dx = dy.float(), dx.float()
    if metric == "euclidean":
        return (dy**2 + dx**2).sqrt() < radius
    return (dy.abs() <= radius) & (dx.abs() <= radius)


def neighbourhood(grid: tuple[int, int], radius: float, metric: str) -> torch.Tensor:
    """Dense ``(hw, hw)`` bool mask, True where key cell is in the query cell's neighbourhood."""
    h, w = grid
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    y, x = yy.reshape(-1), xx.reshape(-1)
    return _within(y[:, None] - y[None], x[:, None] - x[None], radius, metric)


@dataclass(frozen=True)
class _Tile:
    queries: torch.Tensor  # (Q,) flat query indices
    rows: tuple[int, int]  # key window rows [r0, r1)
    cols: tuple[int, int]  # key window cols [c0, c1)
    keys: torch.Tensor  # (K,) flat key indices of the window, row-major
    allowed: torch.Tensor | None  # (Q, K) bool, None when every key is allowed


def _auto_tile(grid: tuple[int, int], radius: float, metric: str) -> int:
    """Tile side minimising query×key products plus a per-tile overhead (a 64×512 product)."""
    h, w = grid
    reach = _reach(radius, metric) if radius > 0 else max(h, w)

    def cost(s: int) -> int:
        def spans(size: int) -> int:
            # queries along one axis times the keys their window spans, summed over tiles
            return sum((min(size, a + s) - a) * (min(size, a + s + reach) - max(0, a - reach)) for a in range(0, size, s))

        return spans(h) * spans(w) + math.ceil(h / s) * math.ceil(w / s) * 64 * 512

    return min((4, 6, 8, 12, 16, 24, 32, 48, 64, max(h, w)), key=cost)


@functools.lru_cache(maxsize=16)
def _tiles(grid: tuple[int, int], radius: float, metric: str, tile: int, device: str) -> tuple[_Tile, ...]:
    """Query tiles with their reachable key windows and masks, built once per grid, radius and device."""
    h, w = grid
    reach = _reach(radius, metric) if radius > 0 else max(h, w)
    out = []
    for r0 in range(0, h, tile):
        for c0 in range(0, w, tile):
            r1, c1 = min(h, r0 + tile), min(w, c0 + tile)
            kr = (max(0, r0 - reach), min(h, r1 + reach))
            kc = (max(0, c0 - reach), min(w, c1 + reach))
            qy, qx = torch.meshgrid(torch.arange(r0, r1), torch.arange(c0, c1), indexing="ij")
            ky, kx = torch.meshgrid(torch.arange(*kr), torch.arange(*kc), indexing="ij")
            qy, qx, ky, kx = qy.reshape(-1), qx.reshape(-1), ky.reshape(-1), kx.reshape(-1)
            allowed = None
            if radius > 0:
                allowed = _within(qy[:, None] - ky[None], qx[:, None] - kx[None], radius, metric)
                if bool(allowed.all()):
                    allowed = None
            out.append(_Tile((qy * w + qx).to(device), kr, kc, (ky * w + kx).to(device),
                             None if allowed is None else allowed.to(device)))
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Engines
# ----------------------------------------------------------------------------------------------


def _normalise(feats: torch.Tensor) -> torch.Tensor:
    if feats.ndim != 4:
        raise ValueError(f"features must be (T, h, w, C), got {tuple(feats.shape)}")
    return F.normalize(feats.float(), dim=-1)


@torch.inference_mode()
def propagate(feats: torch.Tensor, first: torch.Tensor, cfg: PropagationConfig) -> torch.Tensor:
    """Propagate soft labels of frame 0 through a video (the tiled engine).

    Args:
        feats: ``(T, h, w, C)`` features of every frame (any scale; L2-normalised here).
        first: ``(h, w, L)`` soft labels of frame 0 at feature resolution.
        cfg: protocol constants.

    Returns:
        ``(T, h, w, L)`` soft labels; entry 0 is ``first``.
    """
    feats = _normalise(feats)
    T, h, w, C = feats.shape
    n, L = h * w, first.shape[-1]
    check_topk(cfg, T, n)
    labels = torch.empty(T, n, L, dtype=torch.float32, device=feats.device)
    labels[0] = first.reshape(n, L).to(labels)
    tiles = _tiles((h, w), float(cfg.radius), cfg.radius_metric, cfg.tile or _auto_tile((h, w), cfg.radius, cfg.radius_metric),
                   str(feats.device))
    flat = feats.reshape(T, n, C)
    for t in range(1, T):
        copies: dict[int, list[int]] = {}  # frame -> [restricted copies, unrestricted copies]
        for f, mult, restricted in context_frames(t, cfg):
            copies.setdefault(f, [0, 0])[0 if restricted else 1] += mult
        for tile in tiles:
            q = flat[t, tile.queries]
            vals, ids = [], []
            for f, (n_restricted, n_free) in copies.items():
                if n_free:  # the whole frame; its restricted copies reuse these affinities
                    a = q @ flat[f].T
                    v, i = a.topk(min(cfg.topk, n), dim=1)
                    vals.append(v.repeat(1, n_free))
                    ids.append((i + f * n).repeat(1, n_free))
                    if not n_restricted:
                        continue
                    a = a[:, tile.keys]
                else:
                    window = feats[f, tile.rows[0] : tile.rows[1], tile.cols[0] : tile.cols[1]]
                    a = q @ window.reshape(-1, C).T
                if tile.allowed is not None:
                    a.masked_fill_(~tile.allowed, MASKED)
                v, i = a.topk(min(cfg.topk, a.shape[1]), dim=1)
                vals.append(v.repeat(1, n_restricted))
                ids.append((tile.keys[i] + f * n).repeat(1, n_restricted))
            pool_v, pool_i = torch.cat(vals, 1), torch.cat(ids, 1)
            top_v, sel = pool_v.topk(min(cfg.topk, pool_v.shape[1]), dim=1)
            weights = torch.softmax(top_v / cfg.temperature, dim=1)
            votes = labels.view(T * n, L)[pool_i.gather(1, sel)]
            labels[t, tile.queries] = (votes * weights[..., None]).sum(1)
    return labels.view(T, h, w, L)


@torch.inference_mode()
def propagate_dense(feats: torch.Tensor, first: torch.Tensor, cfg: PropagationConfig) -> torch.Tensor:
    """The straightforward reference: one full affinity matrix per target frame.

    Follows DINO's ``label_propagation`` layout (context features stacked, the target repeated,
    one ``bmm``, the full neighbourhood mask, top-k over all context keys along dim 0, a dense
    label product) with CRW's masking (``+ -1e10``) and softmax weighting, and CRW's padded bank
    (repeated frames are stacked as many times as they occur). Same inputs and outputs as
    :func:`propagate`.
    """
    feats = _normalise(feats)
    T, h, w, C = feats.shape
    n, L = h * w, first.shape[-1]
    check_topk(cfg, T, n)
    labels = torch.empty(T, n, L, dtype=torch.float32, device=feats.device)
    labels[0] = first.reshape(n, L).to(labels)
    bias = torch.zeros(n, n, device=feats.device)
    if cfg.radius > 0:
        bias.masked_fill_(~neighbourhood((h, w), float(cfg.radius), cfg.radius_metric).to(feats.device), MASKED)
    flat = feats.reshape(T, n, C)
    for t in range(1, T):
        frames = [(f, r) for f, m, r in context_frames(t, cfg) for _ in range(m)]
        sources = flat[[f for f, _ in frames]]  # (N, n, C)
        target = flat[t][None].repeat(len(frames), 1, 1)
        aff = torch.bmm(target, sources.transpose(1, 2))  # (N, n_query, n_key)
        restricted = torch.tensor([r for _, r in frames], device=feats.device)
        aff = aff + bias[None] * restricted.view(-1, 1, 1)
        aff = aff.transpose(2, 1).reshape(-1, n)  # (N * n_key, n_query)
        top_v, top_i = aff.topk(min(cfg.topk, aff.shape[0]), dim=0)
        weights = torch.zeros_like(aff).scatter_(0, top_i, torch.softmax(top_v / cfg.temperature, dim=0))
        source_labels = labels[[f for f, _ in frames]].reshape(-1, L)  # (N * n_key, L)
        labels[t] = (source_labels.T @ weights).T
    return labels.view(T, h, w, L)

