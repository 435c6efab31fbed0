"""Label-propagation speed: the tiled engine vs a straightforward dense reference, same features.

The reference (:func:`tasks.propagation.propagate_dense`) computes what DINO's
``eval_video_segmentation.py`` computes per target frame: one full affinity between the target and
every context frame (repeated frames stacked as often as CRW's padded bank holds them), the full
neighbourhood mask, top-k over all context keys, and a dense label product. The engine
(:func:`tasks.propagation.propagate`) gives the same predictions while multiplying only the key
windows a tile's neighbourhoods reach and each distinct context frame once. Both run on the same
random features (the cost does not depend on their values); the script prints target frames per
second for each, their ratio, and whether the argmax predictions are identical.

Usage::

    python -m benchmark.perf.propagation                    # DINO ViT-S/8 at DAVIS 480p: 60x104 grid, 384 ch
    python -m benchmark.perf.propagation --preset cosettle --grid 30x55 --dim 768 --frames 26

The default is the setting DINO's script was written for (ViT-S/8, short side 480 → 480×832): the
speed-up grows with the grid and shrinks with the radius, since both methods pay the same
multiply-adds inside the neighbourhood; with ``cosettle`` on a ViT-B/16 grid (radius 20 covers
most of a 30×55 grid) the gain comes mostly from computing CRW's repeated first frame once.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from tasks.propagation import PRESETS, propagate, propagate_dense


def _grid(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="dino", choices=sorted(PRESETS))
    p.add_argument("--dataset", default="davis", choices=["davis", "vip", "jhmdb"])
    p.add_argument("--grid", type=_grid, default=(60, 104), help="feature grid HxW (default 60x104)")
    p.add_argument("--dim", type=int, default=384, help="feature channels")
    p.add_argument("--frames", type=int, default=6, help="frames in the clip (targets = frames - 1)")
    p.add_argument("--labels", type=int, default=4, help="label channels (objects + background)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = PRESETS[args.preset][args.dataset][0]
    g = torch.Generator().manual_seed(args.seed)
    feats = torch.randn(args.frames, *args.grid, args.dim, generator=g)
    first = torch.softmax(3 * torch.randn(*args.grid, args.labels, generator=g), dim=-1)
    propagate(feats[:2], first, cfg)  # warm-up (tile plan, allocator)

    t0 = time.perf_counter()
    fast = propagate(feats, first, cfg)
    t1 = time.perf_counter()
    ref = propagate_dense(feats, first, cfg)
    t2 = time.perf_counter()
    targets = args.frames - 1
    out = {
        "preset": args.preset,
        "grid": list(args.grid),
        "dim": args.dim,
        "frames": args.frames,
        "threads": torch.get_num_threads(),
        "engine_fps": targets / (t1 - t0),
        "dense_fps": targets / (t2 - t1),
        "speedup": (t2 - t1) / (t1 - t0),
        "identical_predictions": bool(torch.equal(fast.argmax(-1), ref.argmax(-1))),
        "max_abs_diff": float((fast - ref).abs().max()),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"preset {args.preset}, grid {args.grid[0]}x{args.grid[1]}x{args.dim}, {targets} target frames, "
              f"{out['threads']} threads")
        print(f"engine   {out['engine_fps']:8.2f} frames/s")
        print(f"dense    {out['dense_fps']:8.2f} frames/s")
        print(f"speed-up {out['speedup']:8.1f}x   identical predictions: {out['identical_predictions']} "
              f"(max |soft diff| {out['max_abs_diff']:.1e})")
    return out


if __name__ == "__main__":
    main()
