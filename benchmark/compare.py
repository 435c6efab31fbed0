"""``bench compare A B --task T``: which samples method B improved over method A, and is the Δ real?

A leaderboard says B is +0.4 J&F over A; this says on which DAVIS sequences (or videos, or queries)
that came from, and whether it is more than noise: the per-sample differences sorted from the most
improved to the most degraded, then the paired bootstrap CI and test of :mod:`benchmark.stats`. With
several seeds per method a sample's score is its mean over the seeds, and the statistics resample
the seeds too. "Better" follows the task's direction (``higher_is_better``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tabulate import tabulate

from benchmark.errors import UserError
from benchmark.results import iter_results
from benchmark.stats import Aligned, PairedResult, compare_records


def _backbone(records: list[dict[str, Any]], a: str, b: str, task: str, backbone: str | None, where: Path) -> str:
    """The backbone both methods have results for on ``task``: the one asked for, or the only one."""
    have = {m: {r["backbone"] for r in records if r["method"] == m} for m in (a, b)}
    for m in (a, b):
        if not have[m] or (backbone and backbone not in have[m]):
            on = f" with backbone {backbone}" if backbone else ""
            raise UserError(f"no complete result of {m} on {task}{on} under {where}: run `bench run --method {m} "
                            f"--tasks {task} ...` first (`bench list results` shows what is there)")
    if backbone:
        return backbone
    shared = sorted(have[a] & have[b])
    if len(shared) != 1:
        which = f"several ({', '.join(shared)})" if shared else "none"
        raise UserError(f"{a} and {b} on {task} share {which} backbones: pass --backbone NAME")
    return shared[0]


def select(results: Path, a: str, b: str, task: str, backbone: str | None = None) -> tuple[str, list[dict], list[dict]]:
    """The backbone, then A's and B's records on ``task`` (one per seed, sorted by seed)."""
    records = [r for r in iter_results(results) if r["task"] == task and r["method"] in (a, b)]
    bb = _backbone(records, a, b, task, backbone, results)
    out = []
    for m in (a, b):
        mine = sorted((r for r in records if r["method"] == m and r["backbone"] == bb), key=lambda r: r["seed"])
        seeds = [r["seed"] for r in mine]
        if len(set(seeds)) != len(seeds):
            twins = [r["_path"] for r in mine if seeds.count(r["seed"]) > 1]
            raise UserError(f"several records of {m} for one seed ({', '.join(twins)}): keep one per seed or pass another --results")
        out.append(mine)
    return bb, out[0], out[1]


def diff_rows(pair: Aligned) -> list[tuple[str, float, float, float]]:
    """(id, A, B, Δ) per paired sample, seed-averaged, from the most improved to the most degraded."""
    a, b = pair.a.mean(axis=0), pair.b.mean(axis=0)
    sign = 1.0 if pair.higher_is_better else -1.0
    order = sorted(range(len(pair.ids)), key=lambda i: (-sign * (b[i] - a[i]), pair.ids[i]))
    return [(pair.ids[i], float(a[i]), float(b[i]), float(b[i] - a[i])) for i in order]


def render(a: str, b: str, task: str, backbone: str, pair: Aligned, result: PairedResult, top: int = 20, digits: int = 4) -> str:
    """The per-sample diff (better, then worse, each at most ``top`` rows; 0 = all) and the test's line."""
    rows = diff_rows(pair)
    sign = 1.0 if pair.higher_is_better else -1.0
    better = [r for r in rows if sign * r[3] > 0]
    worse = [r for r in rows if sign * r[3] < 0][::-1]  # most degraded first
    same = len(rows) - len(better) - len(worse)
    unit = pair.unit
    lines = [f"{b} vs {a} on {task} (backbone {backbone}): {pair.metric} per {unit}, {len(rows)} {unit}s paired, "
             f"seeds {a}: {pair.a.shape[0]}, {b}: {pair.b.shape[0]}; "
             f"{'higher' if pair.higher_is_better else 'lower'} is better"]
    if any(pair.unpaired):
        lines.append(f"note: {pair.unpaired[0]} {unit}s of {a} and {pair.unpaired[1]} of {b} have no partner and are left out")
    for title, part in (("better", better), ("worse", worse)):
        lines.append(f"\n{title} with {b}: {len(part)} {unit}s")
        shown = part if top <= 0 else part[:top]
        if shown:
            lines.append(tabulate(shown, headers=[unit, a, b, "Δ"], tablefmt="github", floatfmt=("", f".{digits}f", f".{digits}f", f"+.{digits}f")))
        if len(shown) < len(part):
            lines.append(f"… and {len(part) - len(shown)} more (--top 0 shows all)")
    lines.append(f"\nunchanged: {same} {unit}s")
    lines.append(result.describe(digits))
    return "\n".join(lines)


def compare(results: Path, a: str, b: str, task: str, backbone: str | None = None, top: int = 20, **kwargs: Any) -> str:
    """``bench compare``: select the records, pair them by sample id, test, render (kwargs to :func:`benchmark.stats.paired`)."""
    if top < 0:
        raise UserError(f"--top {top} must be ≥ 0 (0 shows every sample)")
    if kwargs.get("resamples", 1) < 1:
        raise UserError(f"--resamples {kwargs['resamples']} must be ≥ 1, e.g. 10000")
    bb, recs_a, recs_b = select(Path(results), a, b, task, backbone)
    try:
        pair, result = compare_records(recs_a, recs_b, **kwargs)
    except ValueError as e:  # an option these records cannot take (BCa with several seeds)
        raise UserError(f"{e}") from None
    return render(a, b, task, bb, pair, result, top)
