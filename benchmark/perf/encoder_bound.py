"""Is the DAVIS evaluation encoder-bound? The whole task against pure encoder forwards on its frames.

A label-propagation evaluation reads JPEGs and masks, resizes, encodes every frame, propagates labels
and scores J&F. Only the encoder pass is irreducible, so the share of the whole evaluation spent in
it says how much the rest of the pipeline costs (goal on GPU: ≥ 70 %). The script runs
:class:`tasks.davis.Davis` with the frozen baseline, then times ``backbone.encode`` alone on the very
same frames at the very same input size (already resized and resident on the device, batches of
``--batch-size``), then the reading of frames and masks alone and the J&F scoring alone (ground truth
scored against itself: the same masks, boundaries and objects). The rest (resizing, host-to-device
copies, propagation) is the difference. On CUDA the encoder runs under the bf16 autocast of
:meth:`benchmark.backbones.base.Backbone.encode`, in both measurements.

Usage::

    python -m benchmark.perf.encoder_bound                       # CPU: toy DAVIS (small), native size
    python -m benchmark.perf.encoder_bound --backbone dino --weights dino_vitbase16_pretrain.pth \\
        --toy-size medium --input-size fixed,480,880              # GPU: DAVIS input size, ViT-B/16

Without ``--data-root`` the toy DAVIS of ``--toy-size`` is generated once under the i2v-bench cache;
its JPEGs are smaller than DAVIS 480p, so reading is cheaper there than on the real data.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.backbones import build_backbone
from benchmark.config import defaults, merge
from benchmark.context import RunContext
from benchmark.errors import UserError
from methods.frozen import Frozen
from benchmark.data.davis import load_davis
from benchmark.data.video import to_tensor
from tasks.davis import Davis, score_sequences
from tasks.propagation import input_size, resolve


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rule(text: str | None) -> list[Any] | None:
    """``fixed,480,880`` → ``["fixed", 480, 880]`` (a :func:`tasks.propagation.input_size` rule)."""
    if not text:
        return None
    kind, *numbers = [t.strip() for t in text.split(",")]
    try:
        return [kind, *(int(n) for n in numbers)]
    except ValueError:
        raise UserError(f"--input-size {text!r} must look like fixed,H,W | short,S,M | long,L,M | native") from None


def toy_davis(size: str) -> Path:
    """Toy DAVIS of ``size`` under the cache root (generated once, DAVIS only)."""
    from benchmark.data import cache_root
    from benchmark.data.toy.dense import generate_dense

    root = cache_root() / "perf" / f"davis-{size}-seed0"
    if not (root / "DAVIS" / "ImageSets" / "2017" / "val.txt").is_file():
        generate_dense(root, np.random.default_rng(0), size, datasets=("davis",))
    return root / "DAVIS"


def encoder_seconds(backbone: Any, frames: list[torch.Tensor], batch: int, device: torch.device) -> float:
    """Seconds of ``backbone.encode`` over every clip, inputs already on ``device``."""
    total = 0.0
    with torch.inference_mode():
        for x in frames:
            _sync(device)
            t0 = time.perf_counter()
            for i in range(0, x.shape[0], batch):
                backbone.encode(x[i : i + batch])
            _sync(device)
            total += time.perf_counter() - t0
    return total


def measure(backbone_name: str, weights: str | None, davis_root: Path, rule: list[Any] | None, preset: str,
            batch: int, device: torch.device, repeats: int = 1) -> dict[str, Any]:
    """Run the evaluation and the isolated passes (each the fastest of ``repeats``); return timings and shares."""
    backbone = build_backbone(backbone_name, weights, device)
    method = Frozen(backbone, {"batch_size": batch})
    config = merge(defaults("task", "davis"), {"preset": preset, "input_size": rule}, "davis")
    task = Davis(config)
    _, size_rule = resolve(config, "davis")
    sequences = load_davis(davis_root, config["split"], config["resolution"], None)
    if not sequences:
        raise UserError(f"{davis_root} lists no sequences in ImageSets/2017/{config['split']}.txt")

    t0 = time.perf_counter()
    clips = [seq.read_frames() for seq in sequences]
    masks = [seq.read_masks() for seq in sequences]
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    score_sequences(((seq.name, m, m) for seq, m in zip(sequences, masks)), float(config["bound_th"]))
    score_s = time.perf_counter() - t0
    h, w = input_size(size_rule, clips[0].shape[1], clips[0].shape[2], backbone.stride)
    inputs = [to_tensor(c, input_size(size_rule, c.shape[1], c.shape[2], backbone.stride)).to(device) for c in clips]
    encoder_seconds(backbone, [inputs[0][: min(batch, len(inputs[0]))]], batch, device)  # warm-up: kernels, allocator

    ctx = RunContext(data_root=davis_root, train_data=None, work_dir=Path("/tmp/i2v-bench-perf"), device=device,
                     datasets={"davis": davis_root}, progress=False)
    eval_s = math.inf
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = task.evaluate(method, ctx)
        _sync(device)
        eval_s = min(eval_s, time.perf_counter() - t0)
    enc_s = min(encoder_seconds(backbone, inputs, batch, device) for _ in range(repeats))
    frames = sum(len(c) for c in clips)
    return {
        "backbone": backbone.label, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "encoder_dtype": str(backbone.amp_dtype) if device.type == "cuda" else "float32",
        "sequences": len(sequences), "frames": frames, "input": f"{h}x{w}", "batch": batch, "preset": preset,
        "eval_s": eval_s, "encoder_s": enc_s, "read_s": read_s, "score_s": score_s,
        "other_s": eval_s - enc_s - read_s - score_s,
        "eval_fps": frames / eval_s, "encoder_fps": frames / enc_s, "encoder_share": enc_s / eval_s,
        "J&F-Mean": out.metrics.get("J&F-Mean"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--weights", help="weight file for backbones that need one")
    p.add_argument("--data-root", help="a DAVIS-2017 folder (default: the toy DAVIS of --toy-size)")
    p.add_argument("--toy-size", default="small", choices=["small", "medium"])
    p.add_argument("--input-size", help="resolution rule, e.g. fixed,480,880 (default: native on CPU, the preset's on CUDA)")
    p.add_argument("--preset", default="cosettle", help="propagation preset (tasks/propagation.py)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=1, help="keep the fastest of this many runs of each measurement")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    rule = _rule(args.input_size) or (None if device.type == "cuda" else ["native"])
    root = Path(args.data_root) if args.data_root else toy_davis(args.toy_size)
    out = measure(args.backbone, args.weights, root, rule, args.preset, args.batch_size, device, max(1, args.repeats))
    if args.json:
        print(json.dumps(out))
        return out
    print(f"{out['backbone']} on {out['device']} ({out['threads']} threads, encoder {out['encoder_dtype']}), "
          f"{out['sequences']} sequences, {out['frames']} frames at {out['input']}, batch {out['batch']}, "
          f"preset {out['preset']}, J&F-Mean {out['J&F-Mean']:.3f}")
    rows = [("whole evaluation", out["eval_s"]), ("encoder forwards", out["encoder_s"]),
            ("reading frames+masks", out["read_s"]), ("J&F scoring (ground truth vs itself)", out["score_s"]),
            ("rest (resize, copies, propagation)", out["other_s"])]
    for name, seconds in rows:
        print(f"  {name:<44} {seconds:8.2f} s  {out['frames'] / seconds if seconds > 0 else float('inf'):8.1f} frames/s"
              f"  {seconds / out['eval_s']:6.1%}")
    verdict = "meets" if out["encoder_share"] >= 0.7 else "misses"
    print(f"encoder share of the evaluation: {out['encoder_share']:.1%} ({verdict} the 70 % goal)")
    return out


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
