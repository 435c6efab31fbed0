"""Cost of a second method on an already-encoded backbone, relative to the first (goals ≤ 0.15× at toy
sizes, ≤ 0.05× at protocol frame sizes).

Runs ``bench run`` for two methods on one backbone over the toy suite, in that order, with a fresh
feature cache (:mod:`benchmark.cache`): the first method pays for decoding and every encoder pass
(all misses), the second finds the frozen tokens in the cache, keyed on the frames' source (file
identity, indices, preprocessing), and pays only for its own head and the task: no decoding. The
figure is the second method's evaluation time over the first's, summed over the tasks, as each run's
result records it (``timings.eval_s``). Training (``fit_s``) is shown but not in the ratio: it
encodes randomly augmented frames, which no cache can serve.

Both frame sizes are measured in one run (``--sizes``): ``toy`` uses the toy suite's small frames;
``protocol`` sets the published input sizes (:data:`PROTOCOL_SIZES`, the tasks' YAML defaults) on the
same videos, where the encoder and decoding weigh more.

Usage::

    python -m benchmark.perf.cache --backbone efficientnet_lite0 --methods frozen,cosettle \\
        --tasks tradeoff,davis,ucf101_retrieval

CPU contention from other processes slows torch's threads more than the rest, which changes the
figure: the machine's load average is printed with it. ``--no-cache-baseline`` also runs the
second method with ``--no-cache``. Every run is a separate ``bench run`` process on a temporary
results folder.
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

GOALS = {"toy": 0.15, "protocol": 0.05}
# The published input sizes (configs/tasks/*.yaml defaults), replacing the toy suite's small ones.
PROTOCOL_SIZES = {
    "tradeoff": ["tradeoff.resize_short=256", "tradeoff.crop=224"],  # Co-Settle cal_metric.py Resize(256), CenterCrop(224)
    "davis": ["davis.input_size=[fixed, 480, 880]"],  # T-CORE --davis_crop_size (the cosettle preset)
    "ucf101_retrieval": ["ucf101_retrieval.short_side=256", "ucf101_retrieval.crop=224"],  # VCOP protocol
}


def _records(folder: Path, tasks: list[str]) -> list[dict[str, Any]]:
    """The result record of each task under ``folder`` (whatever the store's layout below it)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("task") in tasks and "timings" in record:
            found[record["task"]] = record
    missing = [t for t in tasks if t not in found]
    if missing:
        raise SystemExit(f"no result record for {', '.join(missing)} under {folder}")
    return [found[t] for t in tasks]


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
    return _records(results / method / args.backbone, args.tasks.split(","))


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


def _measure(args: argparse.Namespace, toy: Path, size: str) -> float:
    """Both runs at one frame size; print their table and return the ratio."""
    first, second = args.methods.split(",")
    sets = [f"--set={item}" for t in args.tasks.split(",") for item in PROTOCOL_SIZES.get(t, [])] if size == "protocol" else []
    with tempfile.TemporaryDirectory(prefix="i2v-cache-perf-") as tmp:
        results = Path(args.keep) / size if args.keep else Path(tmp)
        rows = [_row(f"{first} (cold cache)", _run(first, args, toy, results, sets))]
        rows.append(_row(f"{second} (warm cache)", _run(second, args, toy, results, sets)))
        if args.no_cache_baseline:
            rows.append(_row(f"{second} (--no-cache)", _run(second, args, toy, results / "nocache", [*sets, "--no-cache"])))
    if rows[0]["hits"] or not rows[0]["misses"] or rows[1]["misses"]:
        raise SystemExit(f"unexpected cache traffic (first: {rows[0]['hits']} hits/{rows[0]['misses']} misses, "
                         f"second: {rows[1]['misses']} misses): the runs did not share frozen tokens")
    from tabulate import tabulate

    print(f"\n== {size} frame sizes{': ' + ' '.join(s.split('=', 1)[1] for s in sets) if sets else ''}")
    print(tabulate([{k: v for k, v in r.items() if k != "per_task_eval_s"} for r in rows], headers="keys", floatfmt=".2f"))
    per_task = [{"task": t, **{r["run"]: r["per_task_eval_s"][t] for r in rows},
                 "ratio": rows[1]["per_task_eval_s"][t] / rows[0]["per_task_eval_s"][t]} for t in rows[0]["per_task_eval_s"]]
    print("evaluation seconds per task\n" + tabulate(per_task, headers="keys", floatfmt=".3f"))
    return rows[1]["eval_s"] / rows[0]["eval_s"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--methods", default="frozen,cosettle", help="first,second")
    p.add_argument("--tasks", default="tradeoff,davis,ucf101_retrieval")
    p.add_argument("--sizes", default="toy,protocol", help="frame sizes to measure: toy, protocol or both")
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override passed to every run (e.g. a task's resolution)")
    p.add_argument("--no-cache-baseline", action="store_true", help="also time the second method without the cache")
    p.add_argument("--keep", help="results folder to keep (default: a temporary one, removed)")
    args = p.parse_args(argv)
    sizes = args.sizes.split(",")
    if not set(sizes) <= set(GOALS):
        raise SystemExit(f"--sizes {args.sizes!r}: use toy, protocol or toy,protocol")

    from benchmark.config import suites
    from benchmark.data import cache_root
    from benchmark.data.toy import generate

    size = suites()["toy"].get("toy_size", "small")
    toy = generate(cache_root() / "toy" / f"{size}-seed0", 0, size)  # the data `bench run --suite toy` uses
    load_before = os.getloadavg()[0]
    ratios = {s: _measure(args, toy, s) for s in sizes}
    load = f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} CPUs"
    print(f"\nsecond method / first, evaluation time on {args.backbone} ({args.tasks}); {load}")
    for s, ratio in ratios.items():
        print(f"  {s:<9} {ratio:.3f}x (goal <= {GOALS[s]}x: {'met' if ratio <= GOALS[s] else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
