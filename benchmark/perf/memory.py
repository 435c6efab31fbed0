"""Training peak memory and time: AdViSe-style temporal module vs full fine-tuning.

AdViSe's paper claims its frozen-encoder design trains with 8.2× lower GPU memory than training the
video model end to end. This script trains each method for one epoch on the same backbone and videos,
encoding the same number of frames per step, each in a fresh subprocess (so one run's peak cannot leak into the other's), and prints
their peak memory, time per iteration and trainable parameters, and the finetune/advise peak ratio.

Peak memory is the training record's (:func:`methods.training.peak_memory`): the CUDA allocator's
peak on GPU; on CPU the process's max RSS, which also holds the interpreter, the libraries and the
encoder weights — so the CPU script also prints the *training increment* (max RSS after ``fit``
minus max RSS just before it), the number comparable to a GPU figure.

Usage::

    python -m benchmark.perf.memory --backbone efficientnet_lite0 --frames 24 --size 224 [--train-data DIR]

Without ``--train-data`` the toy suite's Kinetics-style videos are generated in a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PAPER_RATIO = 8.2  # AdViSe paper: GPU memory of end-to-end video training / AdViSe's


def _overrides(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """One epoch at ``size`` pixels, no warm-up, and the same number of frames encoded per step.

    AdViSe encodes clips (one video × ``frames / 8`` clips of 8 frames per step); Co-Settle's
    fine-tuning encodes 3 images per video (frames t and t+gap and the PEA view of t), so it gets
    ``frames / 3`` videos per step. Equal frames per step make the peaks comparable.
    """
    common = {"epochs": 1, "warmup_epochs": 0}
    if method == "advise":
        return {**common, "train_batch_size": 1, "clips_per_video": max(1, args.frames // 8), "num_frames": 8,
                "short_side": args.size, "resize": [args.size, args.size], "crop": args.size}
    return {**common, "train_batch_size": max(1, args.frames // 3), "pre_resize": args.size, "input_size": args.size}


def _child(method: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from benchmark.backbones import build_backbone
    from benchmark.config import defaults
    from benchmark.context import RunContext
    from benchmark.registry import METHODS

    device = torch.device(args.device)
    backbone = build_backbone(args.backbone, device=device)
    cls = METHODS.get(method)
    cfg = {**defaults("method", method, cls), **_overrides(method, args)}
    m = cls(backbone, cfg)
    work = Path(tempfile.mkdtemp(prefix=f"mem_{method}_"))
    ctx = RunContext(data_root=None, train_data=Path(args.train_data), work_dir=work, device=device,
                     progress=False, checkpoint_root=work / "ckpt")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rec = m.fit(ctx)
    frames = (cfg["train_batch_size"] * cfg["clips_per_video"] * cfg["num_frames"] if method == "advise"
              else cfg["train_batch_size"] * 3)  # Co-Settle: frames t, t+gap and the PEA view of t
    return {
        "method": method, "peak_memory_bytes": rec["peak_memory_bytes"], "peak_memory_kind": rec["peak_memory_kind"],
        "increment_bytes": rec["peak_memory_bytes"] - before if device.type == "cpu" else rec["peak_memory_bytes"],
        "train_seconds": rec["train_seconds"], "iterations": rec["iterations"],
        "trainable_params": rec["trainable_params"], "frames_per_step": frames,
    }


def _generate_train_data() -> Path:
    from benchmark.data.toy import generate

    root = generate(Path(tempfile.mkdtemp(prefix="mem_toy_")), seed=0, size="small")
    return root / "kinetics"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--train-data", default=None, help="folder of training videos (default: toy Kinetics)")
    p.add_argument("--frames", type=int, default=24, help="frames encoded per training step (both methods)")
    p.add_argument("--size", type=int, default=224, help="frame size (pixels)")
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--methods", nargs="+", default=["advise", "finetune"])
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args)))
        return []
    if args.train_data is None:
        args.train_data = str(_generate_train_data())
    rows = []
    for method in args.methods:
        cmd = [sys.executable, "-m", "benchmark.perf.memory", "--child", method, "--backbone", args.backbone,
               "--train-data", args.train_data, "--frames", str(args.frames), "--size", str(args.size),
               "--device", args.device]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
        if out.returncode != 0:
            raise SystemExit(f"{method} run failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    mib = 2**20
    print(f"backbone {args.backbone}, {args.size}px, device {args.device}, memory = {rows[0]['peak_memory_kind']}")
    print(f"{'method':<10}{'peak MiB':>10}{'train MiB':>11}{'s/iter':>9}{'iters':>7}{'frames/step':>13}{'trainable':>12}")
    for r in rows:
        print(f"{r['method']:<10}{r['peak_memory_bytes'] / mib:>10.0f}{r['increment_bytes'] / mib:>11.0f}"
              f"{r['train_seconds'] / max(r['iterations'], 1):>9.2f}{r['iterations']:>7}{r['frames_per_step']:>13}{r['trainable_params']:>12,}")
    by = {r["method"]: r for r in rows}
    if {"advise", "finetune"} <= set(by):
        peak = by["finetune"]["peak_memory_bytes"] / by["advise"]["peak_memory_bytes"]
        inc = by["finetune"]["increment_bytes"] / max(by["advise"]["increment_bytes"], 1)
        print(f"peak memory finetune/advise: {peak:.2f}x (training increment {inc:.2f}x); paper claims {PAPER_RATIO}x")
    return rows


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
