"""The GPU figures in one run (``make gpu-check``, under 10 minutes on one GPU), with the device name.

1. :mod:`benchmark.perf.encoder_bound` on a toy DAVIS at DAVIS' input size (480×880, the Co-Settle
   preset) with a ViT-B/16 (random weights: speed does not depend on them).
2. :mod:`benchmark.perf.memory`: AdViSe-style vs full fine-tuning peak GPU memory on the same ViT-B/16
   (the AdViSe paper claims 8.2× lower).
3. The propagation engine on CUDA against the dense reference, on a ViT-B/16 DAVIS grid (30×55×768,
   26 frames, the ``cosettle`` preset): frames/s of each, and whether the predictions agree.
4. One Co-Settle training epoch on the toy suite with AMP: clips/s from the training record.

The random ViT-B/16 is written in DINO's released layout under a temporary ``I2V_BENCH_WEIGHTS``, so
every step builds the registered ``dino`` backbone offline. Each step runs in its own process with a
time limit, and a step that fails is reported and the others still run. Without CUDA the script
prints one line and measures nothing.

Usage::

    python -m benchmark.perf.gpu_check [--out gpu_check.json]

On the lent GPU machine (its image's python3 3.12 has torch and timm, not every package of ours): ``make
gpu-wheels`` here puts the missing ones in ``.whl/`` (gitignored, about 38 MB); then ``make gpu-check`` there,
with ``.whl`` carried, installs them under /tmp and writes ``$OUT/gpu_check.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
# the device machine's 600 s per command, with room for the toy data and the in-process propagation step
STEP_LIMIT_S = {"encoder_bound": 200, "memory": 120, "cosettle_epoch": 100}


def _random_vit_b16(folder: Path) -> None:
    """A random ViT-B/16 saved as DINO releases it (a plain timm state dict, no head)."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
    torch.save(model.state_dict(), folder / "dino_vitbase16_pretrain.pth")


def _run(name: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One step in its own process: its stdout's last line as JSON, or the failure in one line."""
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, env=env,
                             timeout=STEP_LIMIT_S[name], check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"over its {STEP_LIMIT_S[name]} s limit"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]}
    return {"stdout": out.stdout, "seconds": time.perf_counter() - t0}


def _propagation(device: torch.device) -> dict[str, Any]:
    """Engine vs dense reference on the same random features on ``device`` (synchronised timings)."""
    from tasks.propagation import PRESETS, propagate, propagate_dense

    cfg = PRESETS["cosettle"]["davis"][0]
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(26, 30, 55, 768, generator=g).to(device)
    first = torch.softmax(3 * torch.randn(30, 55, 4, generator=g), dim=-1).to(device)
    propagate(feats[:2], first, cfg)  # warm-up: kernels, allocator
    times, preds = [], []
    for fn in (propagate, propagate_dense):
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        preds.append(fn(feats, first, cfg))
        torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return {"engine_fps": 25 / times[0], "dense_fps": 25 / times[1], "speedup": times[1] / times[0],
            "identical_predictions": bool(torch.equal(preds[0].argmax(-1), preds[1].argmax(-1))),
            "max_abs_diff": float((preds[0] - preds[1]).abs().max())}


def _cosettle_epoch(work: Path, env: dict[str, str]) -> dict[str, Any]:
    from benchmark.results import iter_results

    res = work / "cosettle_results"
    run = _run("cosettle_epoch", ["benchmark.cli", "run", "--method", "cosettle", "--backbone", "dino", "--suite", "toy",
                                  "--data-root", str(work / "toy"), "--results", str(res), "--tasks", "tradeoff",
                                  "--set", "cosettle.epochs=1", "--set", "cosettle.warmup_epochs=0",
                                  "--set", "cosettle.input_size=224", "--set", "cosettle.pre_resize=256",
                                  "--device", "cuda", "--no-progress", "--offline", "--no-cache"], env)
    if "error" in run:
        return run
    record = next(iter_results(res))
    t, clips = record.training, record.training["iterations"] * record.config["method"]["train_batch_size"]
    return {"amp": t["amp"], "step_precision": t["step_precision"], "iterations": t["iterations"],
            "train_seconds": t["train_seconds"], "clips_per_s": clips / t["train_seconds"],
            "peak_memory_mib": t["peak_memory_bytes"] / 2**20}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    out = Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else None  # what the device returns
    p.add_argument("--out", type=Path, default=out, help="also write the figures to this JSON file, after every "
                   "step (a run cut short keeps what it measured); default $OUT/gpu_check.json where $OUT is set")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"gpu-check: no CUDA device visible (torch {torch.__version__}): nothing measured")
        return 0
    device = torch.device("cuda")
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__}
    print(f"gpu-check on {report['device']} (torch {report['torch']}, CUDA {torch.version.cuda})", flush=True)

    def save(step: str) -> None:
        print(f"{step}:", json.dumps(report[step]), flush=True)
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))

    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        (work / "weights").mkdir()
        _random_vit_b16(work / "weights")
        env = {**os.environ, "I2V_BENCH_WEIGHTS": str(work / "weights"), "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        from benchmark.data.toy import generate

        generate(work / "toy", seed=0, size="small")
        eb = _run("encoder_bound", ["benchmark.perf.encoder_bound", "--backbone", "dino", "--toy-size", "medium",
                                    "--input-size", "fixed,480,880", "--json"], env)
        report["encoder_bound"] = eb if "error" in eb else json.loads(eb["stdout"].strip().splitlines()[-1])
        save("encoder_bound")
        mem = _run("memory", ["benchmark.perf.memory", "--backbone", "dino", "--train-data", str(work / "toy" / "kinetics"),
                              "--device", "cuda"], env)
        report["memory"] = mem.get("error") or mem["stdout"].strip().splitlines()
        save("memory")
        try:
            report["propagation"] = _propagation(device)
        except Exception as e:  # noqa: BLE001 - a failing step is reported; the others still run
            report["propagation"] = {"error": f"{type(e).__name__}: {e}"}
        save("propagation")
        report["cosettle_epoch"] = _cosettle_epoch(work, env)
        save("cosettle_epoch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
