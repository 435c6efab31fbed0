"""Cost of a second method on an already-encoded backbone, relative to the first (goal ≤ 0.15×).

Runs ``bench run`` for two methods on one backbone over the toy suite, in that order, with a fresh
feature cache (:mod:`benchmark.cache`): the first method pays for every encoder pass (all misses), the
second finds the frozen tokens of the same frames in the cache and pays only for decoding, its own
head and the task. The figure is the second method's evaluation time over the first's, summed over
the tasks, as each run's result records it (``timings.eval_s``). Training (``fit_s``) is shown but not
in the ratio: it encodes randomly augmented frames, which no cache can serve.

Usage::

    python -m benchmark.perf.cache --backbone efficientnet_lite0 --methods frozen,cosettle \\
        --tasks tradeoff,davis,ucf101_retrieval

The figure depends on the encoder's share of an evaluation: the toy suite's small frames make it
small, so ``--set ucf101_retrieval.crop=224`` (protocol sizes) lowers the ratio, and CPU contention
from other processes slows torch's threads far more than decoding, which lowers it too; report the
machine's load with the figure. ``--no-cache-baseline`` also runs the second method with ``--no-cache`` (what it costs without the
cache). Every run is a separate ``bench run`` in this process, on a temporary results folder.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

GOAL = 0.15


def _run(method: str, args: argparse.Namespace, toy: Path, results: Path, extra: list[str]) -> list[dict[str, Any]]:
    """One ``bench run`` over the tasks in a fresh process (both methods pay the same start-up and lazy
    imports); its result records."""
    cmd = [sys.executable, "-m", "benchmark.cli", "run", "--method", method, "--backbone", args.backbone, "--suite", "toy",
           "--tasks", args.tasks, "--data-root", str(toy), "--results", str(results), "--device", args.device,
           "--no-progress", *(f"--set={item}" for item in args.set), *extra]
    env = {**os.environ, "I2V_BENCH_CACHE": str(results / "fresh-cache")}
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"bench run --method {method} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    folder = results / method / args.backbone
    return [json.loads(next((folder / t).glob("*/seed0.json")).read_text()) for t in args.tasks.split(",")]


def _row(label: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    fc = [r["details"].get("feature_cache", {}) for r in records]
    return {
        "run": label, "fit_s": records[0]["timings"]["fit_s"],
        "eval_s": sum(r["timings"]["eval_s"] for r in records),
        "hits": sum(f.get("hits", 0) for f in fc), "misses": sum(f.get("misses", 0) for f in fc),
        "encoder_s_saved": sum(f.get("seconds_saved", 0.0) for f in fc),
        "cache_overhead_s": sum(f.get("overhead_s", 0.0) for f in fc),
        "per_task_eval_s": {r["task"]: r["timings"]["eval_s"] for r in records},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--methods", default="frozen,cosettle", help="first,second")
    p.add_argument("--tasks", default="tradeoff,davis,ucf101_retrieval")
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override passed to both runs (e.g. a task's resolution)")
    p.add_argument("--no-cache-baseline", action="store_true", help="also time the second method without the cache")
    p.add_argument("--keep", help="results folder to keep (default: a temporary one, removed)")
    args = p.parse_args(argv)
    first, second = args.methods.split(",")

    from tabulate import tabulate

    from benchmark.data import cache_root
    from benchmark.config import suites
    from benchmark.data.toy import generate

    size = suites()["toy"].get("toy_size", "small")
    toy = generate(cache_root() / "toy" / f"{size}-seed0", 0, size)  # the data `bench run --suite toy` uses
    with tempfile.TemporaryDirectory(prefix="i2v-cache-perf-") as tmp:
        results = Path(args.keep or tmp)
        rows = [_row(f"{first} (cold cache)", _run(first, args, toy, results, []))]
        rows.append(_row(f"{second} (warm cache)", _run(second, args, toy, results, [])))
        if args.no_cache_baseline:
            rows.append(_row(f"{second} (--no-cache)", _run(second, args, toy, results / "nocache", ["--no-cache"])))
    if rows[0]["hits"] or not rows[0]["misses"] or rows[1]["misses"]:
        raise SystemExit(f"unexpected cache traffic (first: {rows[0]['hits']} hits/{rows[0]['misses']} misses, "
                         f"second: {rows[1]['misses']} misses): the runs did not share frozen tokens")
    print(tabulate([{k: v for k, v in r.items() if k != "per_task_eval_s"} for r in rows], headers="keys",
                   floatfmt=".2f"))
    per_task = [{"task": t, **{r["run"]: r["per_task_eval_s"][t] for r in rows},
                 "ratio": rows[1]["per_task_eval_s"][t] / rows[0]["per_task_eval_s"][t]} for t in rows[0]["per_task_eval_s"]]
    print("\nevaluation seconds per task\n" + tabulate(per_task, headers="keys", floatfmt=".3f"))
    ratio = rows[1]["eval_s"] / rows[0]["eval_s"]
    print(f"\nsecond method / first, evaluation time on {args.backbone} ({args.tasks}): {ratio:.3f}x "
          f"(goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
