"""Comparing result records: pairing by sample id, table-wide comparisons, and ``bench compare``.

:func:`align` pairs two methods' records of one task (one per seed) by sample id into the arrays
:mod:`benchmark.stats` tests; :func:`compare_many` / :func:`compare_table` do that for every cell of a
leaderboard against its baseline, Holm-adjusted together. ``bench compare A B --task T`` answers
the question a leaderboard cannot: B is +0.4 J&F over A, but on which DAVIS sequences (or videos, or
queries), and is it more than noise? It prints the per-sample differences from the most improved
to the most degraded, then the paired CI and test. With several seeds per method a sample's score
is its mean over the seeds and the statistics resample the seeds too. "Better" follows the task's
direction (``higher_is_better``), which the per-sample column shares with the main metric.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable, Iterable

import numpy as np
from tabulate import tabulate

from benchmark.errors import UserError
from benchmark.results import iter_results
from benchmark.stats import PairedResult, adjust, paired


def field(record: Any, name: str) -> Any:
    """One field of a result record: a dict as stored (readers add ``_path``) or an object with attributes
    (``path``). The only place that knows how a record is held."""
    if isinstance(record, dict):
        return record.get("_path" if name == "path" else name)
    return getattr(record, name, None)


def _where(record: Any) -> str:
    return field(record, "path") or f"{field(record, 'method')}/{field(record, 'backbone')}/{field(record, 'task')}"


@dataclass(frozen=True)
class Aligned:
    """Two methods' scores on their shared samples: ``a`` (n_seeds_a, n) and ``b`` (n_seeds_b, n), ids sorted."""

    ids: list[str]
    a: np.ndarray
    b: np.ndarray
    metric: str
    unit: str
    higher_is_better: bool
    unpaired: tuple[int, int]  # samples of a / of b without a partner, left out


def sample_column(record: Any) -> tuple[list[str], list[Any], str]:
    """A record's per-sample scores: ids, the paired column (``sample_metric``, else ``main_metric``), its name."""
    samples, metric = field(record, "samples"), field(record, "sample_metric") or field(record, "main_metric")
    if not isinstance(samples, dict) or not samples.get("id"):
        raise UserError(f"result {_where(record)} has no per-sample scores: rerun it with `bench run --force` to compare it")
    if metric not in samples:
        raise UserError(f"result {_where(record)} has no per-sample column {metric!r} (has {', '.join(map(str, samples))}): "
                        f"rerun it with `bench run --force`")
    ids, values = samples["id"], samples[metric]
    if not isinstance(values, list) or len(values) != len(ids):
        raise UserError(f"result {_where(record)}: samples[{metric!r}] does not hold one value per id: "
                        f"the file is damaged, rerun it")
    return [str(i) for i in ids], values, metric


def _scores(records: list[Any]) -> tuple[list[dict[str, float]], str]:
    """Per seed record: {id: score}; and the column name, which every record must share."""
    out, metrics = [], set()
    seeds = [field(r, "seed") for r in records]
    if len(set(seeds)) != len(seeds):
        raise UserError(f"several records for one seed ({', '.join(map(_where, records))}): pass one record per seed")
    for r in records:
        ids, values, metric = sample_column(r)
        if len(set(ids)) != len(ids):
            raise UserError(f"result {_where(r)} repeats sample ids: the file is damaged, rerun it")
        bad = [i for i, v in zip(ids, values) if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v)]
        if bad:
            raise UserError(f"result {_where(r)}: {metric} of sample {bad[0]!r} is {values[ids.index(bad[0])]!r}, not a finite "
                            f"number ({len(bad)} such): rerun it")
        out.append(dict(zip(ids, map(float, values))))
        metrics.add(metric)
    if len(metrics) > 1:
        raise UserError(f"results {', '.join(map(_where, records))} pair different columns "
                        f"({', '.join(sorted(metrics))}): compare records of one task")
    return out, metrics.pop()


def _as_list(records: Any) -> list[Any]:
    """One record, or several (one per seed) sorted by seed, so the numbers do not depend on reading order."""
    if isinstance(records, (list, tuple)):
        return sorted(records, key=lambda r: field(r, "seed") or 0)
    return [records]


def align(a: Any, b: Any, strict: bool = False) -> Aligned:
    """Pair two methods' records (one record, or a list of one record per seed) by sample id.

    Samples are paired on the ids every record holds; ``strict`` refuses any id without a partner (so
    the pairs are exactly every record's samples), otherwise they are left out and counted in
    ``unpaired``. Records of different tasks or evaluation data (``data_fingerprint["data"]``, where
    both carry one), no shared id, missing per-sample scores: a UserError naming the file.
    """
    a_recs, b_recs = _as_list(a), _as_list(b)
    if not a_recs or not b_recs:
        raise UserError("nothing to compare: each side needs at least one result record")
    everything = a_recs + b_recs
    where = f"{_where(a_recs[0])} and {_where(b_recs[0])}"
    if len({field(r, "task") for r in everything}) > 1:
        raise UserError(f"{where} are results of different tasks: compare records of one task")
    data = {(field(r, "data_fingerprint") or {}).get("data") for r in everything} - {None}
    if len(data) > 1:
        raise UserError(f"{where} were evaluated on different data (fingerprints differ): rerun one of them on the other's data")
    (sa, ma), (sb, mb) = _scores(a_recs), _scores(b_recs)
    if ma != mb:
        raise UserError(f"{where} score different columns per sample ({ma!r}, {mb!r}): compare records of one task")
    shared = sorted(set.intersection(*(set(s) for s in sa + sb)))
    if not shared:
        raise UserError(f"{where} share no sample ids: they were run on different data; rerun one of them on the other's data")
    unpaired = (len(set().union(*sa)) - len(shared), len(set().union(*sb)) - len(shared))
    if strict and any(unpaired):
        raise UserError(f"{where} do not hold the same samples ({unpaired[0]} and {unpaired[1]} without a partner): "
                        f"rerun them on the same data")
    hib = field(a_recs[0], "higher_is_better")
    return Aligned(ids=shared, a=np.array([[s[i] for i in shared] for s in sa]), b=np.array([[s[i] for i in shared] for s in sb]),
                   metric=ma, unit=str(field(a_recs[0], "sample_unit") or "sample"),
                   higher_is_better=True if hib is None else bool(hib), unpaired=unpaired)


def compare_records(a: Any, b: Any, strict: bool = False, **kwargs: Any) -> tuple[Aligned, PairedResult]:
    """:func:`align` then :func:`paired` (keyword arguments passed on)."""
    pair = align(a, b, strict)
    return pair, paired(pair.a, pair.b, **kwargs)


def compare_many(pairs: dict[Hashable, tuple[Any, Any]], correct: bool = True, **kwargs: Any) -> dict[Hashable, PairedResult]:
    """Each ``key: (reference records, other records)`` compared (strict pairing), Holm-adjusted together.

    A pair that cannot be compared (no per-sample scores, different samples) is left out with one
    warning line on stderr, so an old record costs its mark, not the table.
    """
    keys, results = [], []
    for key, (ref, other) in pairs.items():
        try:
            results.append(compare_records(ref, other, strict=True, **kwargs)[1])
            keys.append(key)
        except UserError as e:
            name = " / ".join(map(str, key)) if isinstance(key, tuple) else key
            print(f"warning: no paired statistics for {name}: {e}", file=sys.stderr)
    return dict(zip(keys, adjust(results) if correct and results else results))


def compare_table(records: Iterable[Any], reference: str = "frozen", correct: bool = True,
                  **kwargs: Any) -> dict[tuple[str, str, str, str], PairedResult]:
    """Every (method, variant) against ``reference`` of the same backbone and task: :func:`compare_many`.

    Keys are (backbone label, method, variant, task), the row and column of a leaderboard cell. A
    backbone and task whose reference ran in several variants get no comparison (which one is the
    baseline is the table's choice, then call :func:`compare_many`).
    """
    groups: dict[tuple[str, str, str, str], list[Any]] = {}
    for r in records:
        key = (field(r, "backbone_label") or field(r, "backbone"), field(r, "method"), field(r, "variant") or "default",
               field(r, "task"))
        groups.setdefault(key, []).append(r)
    refs: dict[tuple[str, str], list[list[Any]]] = {}
    for (backbone, method, _variant, task), recs in groups.items():
        if method == reference:
            refs.setdefault((backbone, task), []).append(recs)
    pairs = {key: (refs[key[0], key[3]][0], recs) for key, recs in groups.items()
             if key[1] != reference and len(refs.get((key[0], key[3]), [])) == 1}
    return compare_many(pairs, correct, **kwargs)


def _backbone(records: list[Any], a: str, b: str, task: str, backbone: str | None, where: Path) -> str:
    """The backbone both methods have results for on ``task``: the one asked for, or the only one."""
    have = {m: {field(r, "backbone") for r in records if _name(r) == m} for m in (a, b)}
    for m in (a, b):
        if not have[m] or (backbone and backbone not in have[m]):
            on = f" with backbone {backbone}" if backbone else ""
            there = ", ".join(sorted({_name(r) for r in records})) or "nothing"
            raise UserError(f"no complete result of {m} on {task}{on} under {where} (there: {there}): run "
                            f"`bench run --method {m.split('@')[0]} --tasks {task} ...` first")
    if backbone:
        return backbone
    shared = sorted(have[a] & have[b])
    if len(shared) != 1:
        which = f"several ({', '.join(shared)})" if shared else "no"
        raise UserError(f"{a} and {b} on {task} share {which} backbones: pass --backbone NAME")
    return shared[0]


def _name(record: Any) -> str:
    """How ``bench compare`` names a record's method: ``METHOD``, or ``METHOD@VARIANT`` for a variant
    other than the default one."""
    variant = field(record, "variant") or "default"
    return field(record, "method") if variant == "default" else f"{field(record, 'method')}@{variant}"


def common_variant(records: list[Any], a: str, b: str, task: str, backbone: str | None) -> tuple[str, str, str]:
    """``(a, b, note)``: two plain method names that do not both have a default result on ``task`` (and
    ``backbone``) turned into ``METHOD@V`` for the one variant V both have, with a note saying so.

    A run with ``--suite toy`` is the variant ``toy``, so ``bench compare frozen advise`` on toy runs means
    their one shared variant; with several shared variants, which one is the user's choice (a UserError
    listing them). Names with ``@``, or no shared variant, are returned unchanged."""
    if "@" in a or "@" in b:
        return a, b, ""
    have = [{field(r, "variant") or "default" for r in records
             if field(r, "method") == m and (not backbone or field(r, "backbone") == backbone)} for m in (a, b)]
    shared = sorted(have[0] & have[1])
    if "default" in shared or not shared:
        return a, b, ""
    if len(shared) > 1:
        raise UserError(f"{a} and {b} on {task} have no default result but several shared variants ({', '.join(shared)}): "
                        f"name one, e.g. `bench compare {a}@{shared[0]} {b}@{shared[0]} --task {task}`")
    v = shared[0]
    return f"{a}@{v}", f"{b}@{v}", f"note: {a} and {b} have no default result on {task}: comparing their one shared variant {v!r}"


def select(results: Path, a: str, b: str, task: str, backbone: str | None = None) -> tuple[str, str, str, str, list[Any], list[Any]]:
    """The names compared (:func:`common_variant`), a note on them ("" if as given), the backbone, then the
    records of A and of B (``METHOD`` or ``METHOD@VARIANT``) on ``task``, one per seed."""
    records = [r for r in iter_results(results) if field(r, "task") == task]
    a, b, note = common_variant(records, a, b, task, backbone)
    bb = _backbone(records, a, b, task, backbone, results)
    return a, b, note, bb, *([r for r in records if _name(r) == m and field(r, "backbone") == bb] for m in (a, b))


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
            fmt = ("", f".{digits}f", f".{digits}f", f"+.{digits}f")
            lines.append(tabulate(shown, headers=[unit, a, b, "Δ"], tablefmt="github", floatfmt=fmt))
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
    a, b, note, bb, recs_a, recs_b = select(Path(results), a, b, task, backbone)
    try:
        pair, result = compare_records(recs_a, recs_b, **kwargs)
    except ValueError as e:  # an option these records cannot take (BCa with several seeds)
        raise UserError(f"{e}") from None
    return (f"{note}\n" if note else "") + render(a, b, task, bb, pair, result, top)
