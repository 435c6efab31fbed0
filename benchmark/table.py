"""Leaderboards from result records: pandas for the pivot, scipy for the intervals, tabulate for text.

Rows are backbone × method × variant (the ``frozen`` row first in each backbone's group), columns the
tasks' main metrics (or any metric asked for). A variant is one configuration
(:func:`benchmark.identity.variant_name`): two variants are two rows, never averaged together. A cell is the mean over seeds; with more than one seed it adds
± the sample standard deviation and the 95 % confidence interval of the mean from Student's t
distribution (``mean ± t(0.975, n-1)·std/√n``), since three seeds are far too few for a normal
interval. Each column marks its best entry (bold) and, with three or more entries, its second
(underlined in LaTeX and HTML, italic in Markdown), following the metric's direction; ties share a
rank; a RANDOM-INIT backbone (a test encoder) is never ranked. Δ is the difference of the headline
metric to the ``frozen`` row of the same backbone evaluated with the same task and backbone
configuration, the baseline every transfer method has to beat. Only records with ``status == "ok"``
and a finite value are read (:func:`benchmark.results.iter_results`), so a failed run is a missing
cell, never a number. A t-interval of a metric whose every value is ≥ 0 (accuracy, J&F, mAP,
distances) is clipped at 0, and the legend says where: the symmetric interval cannot know the bound.

**Significance** (:func:`significance`): each Δ is also tested on the records' per-sample scores
(:func:`benchmark.compare.compare_many`: paired bootstrap CI, hierarchical over seeds, sign-flip
permutation or bootstrap test), Holm-adjusted across every comparison of the table by default. The
cell keeps Δ of the official metric and is marked † when the paired CI excludes 0 *and* the
(adjusted) p is below α, so a mark never sits beside an interval that spans 0. The paired Δ, its CI
and its test are of the *mean* of the per-sample column; that is the headline metric only where the
headline is that mean (top-1 is the mean of ``correct``, R@k of the per-query hits). Where a record's
headline pools or weights the samples otherwise (DAVIS J&F-Mean averages over objects, VIP's mIoU
and THUMOS's mAP pool over videos), the legend names the task: it is judged on the records
themselves (headline vs mean of the column), so a plugin task needs no declaration. A cell whose Δ
cannot be tested is left unmarked, and its reason (``untested``) is counted in the legend.

The reference method is ``frozen`` unless ``reference`` (``bench table --reference M``) names another.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Iterable

import pandas as pd
from scipy import stats
from tabulate import tabulate

from benchmark.compare import compare_many
from benchmark.config import config_hash
from benchmark.errors import UserError
from benchmark.record import ResultRecord
from benchmark.results import iter_results
from benchmark.stats import ALPHA, RESAMPLES

FORMATS = ("markdown", "latex", "csv", "html")
BASELINE = "frozen"
CONFIDENCE = 0.95
MISSING = {"markdown": "–", "html": "–", "latex": "--"}
MARK = "†"
RANDOM_INIT = "(RANDOM INIT)"
STAT_COLUMNS = {"paired_delta": math.nan, "delta_ci_low": math.nan, "delta_ci_high": math.nan, "p": math.nan,
                "p_holm": math.nan, "test": "", "n_paired": 0, "marked": False, "testable": False, "untested": ""}
NO_PARTNER = "the records' samples could not be paired (see the warning above the table)"


def load_frame(results: Path, tasks: list[str] | None = None, metric: str | None = None,
               methods: list[str] | None = None, backbones: list[str] | None = None) -> pd.DataFrame:
    """:func:`frame` of the complete records under ``results``."""
    return frame(iter_results(results), tasks, metric, methods, backbones, where=str(results))


def frame(records: Iterable[ResultRecord], tasks: list[str] | None = None, metric: str | None = None,
          methods: list[str] | None = None, backbones: list[str] | None = None, where: str = "the results") -> pd.DataFrame:
    """One row per record: method, backbone (its label), variant, task, seed, metric, value, direction,
    ``setting`` (a hash of the task and backbone configuration: what Δ vs frozen must share), ``preset``, ``pck``,
    ``input_norm`` (:mod:`benchmark.published` matches on them), ``random_init``, ``record`` (:func:`significance`).

    ``backbones`` filters on registry names; the table shows labels ("… (RANDOM INIT)"). A value that is
    not a finite number (NaN, a string) is no cell.
    """
    rows = []
    for r in records:
        if (tasks and r.task not in tasks) or (methods and r.method not in methods) or (
                backbones and r.backbone not in backbones):
            continue
        name = metric or r.main_metric
        value = r.metrics.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            continue
        rows.append({
            "method": r.method, "backbone": r.backbone_label, "variant": r.variant, "task": r.task,
            "seed": r.seed, "metric": name, "value": float(value), "higher_is_better": bool(r.higher_is_better),
            "setting": config_hash([r.config.get("task"), r.config.get("backbone")]),
            **{key: str((r.config.get("task") or {}).get(key) or "") for key in ("preset", "pck")},
            "input_norm": str((r.config.get("backbone") or {}).get("input_norm") or "own"),  # older records: own
            "random_init": RANDOM_INIT in r.backbone_label or r.weights_id.startswith("random-init"),
            "record": r,
        })
    if not rows:
        which = f" for {', '.join(tasks)}" if tasks else ""
        raise UserError(f"no complete results under {where}{which}: run `bench run` or `bench sweep` first")
    return pd.DataFrame(rows)


def ci_halfwidth(std: float, n: int, confidence: float = CONFIDENCE) -> float:
    """Half-width of the t-interval of a mean of ``n`` samples (NaN below two samples)."""
    if n < 2 or math.isnan(std):
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))


def summarise(df: pd.DataFrame, confidence: float = CONFIDENCE, holm: bool = True, resamples: int = RESAMPLES,
              seed: int = 0, reference: str = BASELINE) -> pd.DataFrame:
    """Per (backbone, method, variant, task, metric): n, mean, std, CI bounds (``ci_clipped`` where clipped at
    0), Δ vs ``reference``, rank and entries in its column, ``preset``, ``pck``, ``random_init``, the columns of
    :func:`significance` (``holm``, ``resamples`` and ``seed`` go there) and ``reference``. Δ compares with
    the reference entry of the same backbone, task and ``setting``; where the reference was run in more than
    one variant of that setting, Δ is left empty rather than guessed."""
    keys = ["backbone", "method", "variant", "task", "metric"]
    g = df.groupby(keys, sort=False)
    s = g["value"].agg(["count", "mean", "std"]).reset_index().rename(columns={"count": "n"})
    for col in ("higher_is_better", "setting", "preset", "pck", "input_norm", "random_init"):
        s[col] = g[col].first().values if col in df.columns else ""
    half = pd.Series([ci_halfwidth(sd, n, confidence) for sd, n in zip(s["std"], s["n"])], index=s.index)
    bounded = df.groupby(["task", "metric"])["value"].min().ge(0)
    low = s["mean"] - half
    s["ci_clipped"] = [bool(bounded.get((t, m), False)) and lo < 0 for t, m, lo in zip(s["task"], s["metric"], low)]
    s["ci_low"], s["ci_high"] = low.where(~s["ci_clipped"], 0.0), s["mean"] + half
    ref = s[s["method"] == reference].groupby(["backbone", "task", "metric", "setting"])["mean"]
    base = ref.first()[ref.size() == 1]
    s["delta"] = [
        mean - base.get((b, t, m, c), math.nan) if meth != reference else math.nan
        for meth, b, t, m, c, mean in zip(s["method"], s["backbone"], s["task"], s["metric"], s["setting"], s["mean"])
    ]
    ranked = ~s["random_init"].astype(bool)  # a test encoder with random weights is never "best"
    signed = s["mean"].where(s["higher_is_better"], -s["mean"])[ranked]
    s["rank"] = signed.groupby([s["task"], s["metric"]]).rank(method="min", ascending=False)  # NaN: not ranked
    s["entries"] = ranked.groupby([s["task"], s["metric"]]).transform("sum").astype(int)
    tested = significance(df, base.index, holm, resamples, seed, confidence, reference) if "record" in df.columns else {}
    cells = [tested.get(key, {}) for key in zip(*(s[k] for k in keys))]
    for col, empty in STAT_COLUMNS.items():
        s[col] = [c.get(col, empty) for c in cells]
    notes = sample_notes(df)
    s["sample_note"] = [notes.get(t, "") for t in s["task"]]
    s["reference"] = reference
    s["_order"] = s["method"].ne(reference)
    s = s.sort_values(["backbone", "_order", "method", "variant", "task", "metric"]).drop(columns=["_order", "setting"])
    return s.reset_index(drop=True)


def _has_samples(record: ResultRecord) -> bool:
    return isinstance(record.samples, dict) and bool(record.samples.get("id"))


def _column_is_headline(record: ResultRecord) -> bool:
    """Whether the paired column is a per-sample form of the headline metric, not another reported metric
    (tradeoff pairs per-video cycle accuracy; its margin D is pairwise over videos and has no per-video
    value, so a CI of cycle accuracy beside D would mislead)."""
    column = record.sample_metric or record.main_metric
    return column == record.main_metric or column not in record.metrics


def headline_is_mean(record: ResultRecord) -> bool:
    """Whether the record's headline metric is the plain mean of its paired per-sample column (up to float
    rounding), i.e. whether the paired Δ and its CI are those of the headline. False for a headline that
    pools or weights the samples otherwise (objects, pixels, detections: ``Task.aggregate`` overridden)."""
    values = record.samples.get(record.sample_metric or record.main_metric)
    headline = record.metrics.get(record.main_metric)
    if not values or not isinstance(headline, (int, float)):
        return False
    try:
        return math.isclose(math.fsum(values) / len(values), headline, rel_tol=1e-9, abs_tol=1e-12)
    except TypeError:  # a column that is not numbers
        return False


def _untested(record: ResultRecord, metric: str) -> str:
    """Why a Δ on ``record`` cannot be tested, "" if it can (as far as one record can tell)."""
    if metric != record.main_metric:
        return f"{metric} is not the headline metric, whose per-sample column the test pairs"
    if not _has_samples(record):
        return "no per-sample scores"
    if not _column_is_headline(record):
        return (f"the headline {record.main_metric} has no per-{record.sample_unit or 'sample'} form "
                f"(the records' per-sample {record.sample_metric} is another metric)")
    return ""


def significance(df: pd.DataFrame, baselines: pd.Index, holm: bool = True, resamples: int = RESAMPLES, seed: int = 0,
                 confidence: float = CONFIDENCE, reference: str = BASELINE) -> dict[tuple, dict]:
    """The paired test of every Δ of :func:`summarise`: (backbone, method, variant, task, metric) → the
    :data:`STAT_COLUMNS` of its cell.

    Pairs exactly what Δ pairs (the one ``reference`` variant of the same backbone, task, metric and setting
    in ``baselines``), and only records whose shown metric is their headline metric, since the per-sample
    column stands for that metric and no other. A Δ that cannot be tested gives a row with ``testable``
    False and the reason in ``untested`` (:func:`_untested`, or :data:`NO_PARTNER`);
    :func:`benchmark.compare.compare_many` Holm-adjusts across all the others.
    """
    groups: dict[tuple, list[ResultRecord]] = {}
    for row in df.itertuples(index=False):
        groups.setdefault((row.backbone, row.method, row.variant, row.task, row.metric, row.setting), []).append(row.record)
    refs = {(b, t, m, c): recs for (b, meth, _, t, m, c), recs in groups.items() if meth == reference}
    pairs, untestable = {}, {}
    for (b, meth, v, t, m, c), recs in groups.items():
        if meth == reference or (b, t, m, c) not in baselines:  # no Δ (no reference, or it in several variants)
            continue
        ref = refs[b, t, m, c]
        why = next((w for w in (_untested(r, m) for r in ref + recs) if w), "")
        if why:
            untestable[b, meth, v, t, m] = why
        else:
            pairs[b, meth, v, t, m] = (ref, recs)
    results = compare_many(pairs, correct=holm, resamples=resamples, seed=seed, confidence=confidence) if pairs else {}
    rows = {key: {"paired_delta": r.delta, "delta_ci_low": r.ci_low, "delta_ci_high": r.ci_high, "p": r.p_value,
                  "p_holm": r.p_adjusted if r.correction == "Holm" else math.nan, "test": r.test, "n_paired": r.n_samples,
                  "marked": r.significant and r.ci_excludes_zero, "testable": True} for key, r in results.items()}
    dropped = {key: {"testable": False, "untested": NO_PARTNER} for key in pairs if key not in rows}
    return {**{key: {"testable": False, "untested": why} for key, why in untestable.items()}, **dropped, **rows}


def sample_notes(df: pd.DataFrame) -> dict[str, str]:
    """task → "<headline> vs the mean per-<unit> <column>" for tasks where some record's headline is not the
    mean of its paired column (:func:`headline_is_mean`), so the tested Δ is not exactly the cell's Δ."""
    out = {}
    for r in df["record"] if "record" in df.columns else []:
        if _has_samples(r) and _column_is_headline(r) and not headline_is_mean(r):
            column = r.sample_metric or r.main_metric
            out.setdefault(r.task, f"{r.main_metric} vs the mean per-{r.sample_unit or 'sample'} {column}")
    return out


def _num(x: float, digits: int, sign: bool = False) -> str:
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _delta_text(row: pd.Series, digits: int, ci: bool) -> str:
    """Δ, its mark, and with ``ci`` the paired interval (signed, so it reads as an interval of Δ)."""
    delta = _num(row["delta"], digits, sign=True) + (MARK if row["marked"] else "")
    if not (ci and row["testable"]):
        return delta
    return f"{delta} [{_num(row['delta_ci_low'], digits, True)}, {_num(row['delta_ci_high'], digits, True)}]"


def cell(row: pd.Series, fmt: str, digits: int = 3, ci: bool = False) -> str:
    """One leaderboard cell: marked mean, Δ vs frozen († and, with ``ci``, its paired interval), ± std and
    [95 % CI of the mean] (the last two with > 1 seed)."""
    mean = _num(row["mean"], digits)
    best = row["rank"] == 1 and row["entries"] >= 2
    second = row["rank"] == 2 and row["entries"] >= 3
    has_delta = not math.isnan(row["delta"])
    spread = row["n"] > 1 and not math.isnan(row["std"])
    delta = _delta_text(row, digits, ci) if has_delta else ""
    std = _num(row["std"], digits) if spread else ""
    interval = f"[{_num(row['ci_low'], digits)}, {_num(row['ci_high'], digits)}]" if spread else ""
    if fmt == "latex":
        mean = f"\\textbf{{{mean}}}" if best else f"\\underline{{{mean}}}" if second else mean
        delta = delta.replace(MARK, "^{\\dagger}").replace(" [", "\\,[")
        text = mean + (f"$_{{{delta}}}$" if has_delta else "")
        return text + (f" {{\\scriptsize $\\pm$ {std} {interval}}}" if spread else "")
    if fmt == "html":
        mean = f"<b>{mean}</b>" if best else f"<u>{mean}</u>" if second else mean
        text = mean + (f"<sub>{delta}</sub>" if has_delta else "")
        return text + (f" ± {std} <small>{interval}</small>" if spread else "")
    mean = f"**{mean}**" if best else f"_{mean}_" if second else mean
    return mean + (f" ({delta})" if has_delta else "") + (f" ± {std} {interval}" if spread else "")


def _bool(summary: pd.DataFrame, col: str) -> pd.Series:
    return summary[col].astype(bool) if col in summary.columns else pd.Series(False, index=summary.index)


def legend_items(summary: pd.DataFrame, fmt: str, ci: bool = False) -> list[str]:
    """What the marks and numbers in the cells mean, only the items that occur in this table."""
    items = []
    rank, entries = summary["rank"].fillna(0), summary["entries"]
    marks = (["Bold: best"] if (rank.eq(1) & entries.ge(2)).any() else []) + (
        [{"latex": "underlined", "html": "underlined"}.get(fmt, "italic") + ": second"] if (rank.eq(2) & entries.ge(3)).any() else [])
    if marks:
        items.append(", ".join(marks) + " per column")
    if _bool(summary, "random_init").any():
        items.append(f"backbones marked {RANDOM_INIT} are test encoders, never ranked")
    deltas = summary["delta"].notna()
    if deltas.any():
        where = "in brackets" if fmt == "markdown" else "subscript"
        items.append(f"Δ ({where}) vs the {_reference(summary)} row of the same backbone and task setting")
    if summary["variant"].ne("default").any():
        items.append("each variant (configuration) is its own row, never averaged with another")
    seeds = sorted(set(summary["n"]))
    if max(seeds) > 1:
        items.append(f"± sample std over seeds and [{CONFIDENCE:.0%} CI of the mean, t-distribution]"
                     f" (seeds per cell: {', '.join(map(str, seeds))})")
    clipped = summary[_bool(summary, "ci_clipped")]
    if len(clipped):
        items.append("a mean's CI is clipped at 0 where every value of the metric is ≥ 0 ("
                     + ", ".join(dict.fromkeys(f"{t} {m}" for t, m in zip(clipped["task"], clipped["metric"]))) + ")")
    tested = summary[_bool(summary, "testable") & deltas]
    if len(tested):
        holm = tested["p_holm"].notna().any()
        items.append(f"{MARK}: the paired {CONFIDENCE:.0%} bootstrap CI of Δ excludes 0 and p < {ALPHA:g} ("
                     + ("Holm-adjusted" if holm else "not adjusted") + f" across the {len(tested)} tested Δ of this table),"
                     f" tested on the per-sample scores ({'; '.join(sorted(set(tested['test'])))}); the cell shows Δ of the"
                     " headline metric")
        notes = {t: n for t, n in zip(tested["task"], tested.get("sample_note", [""] * len(tested))) if n}
        if notes:
            items.append("the test pairs a per-sample column whose mean is not exactly the headline metric (the headline "
                         "pools or weights the samples otherwise), so the tested Δ and its CI are of that mean and can "
                         "differ from the cell's Δ: " + ", ".join(f"{t} ({n})" for t, n in notes.items()))
        if ci:
            items.append(f"[signed interval] after Δ: paired {CONFIDENCE:.0%} bootstrap CI of the per-sample Δ")
    untested = summary[deltas & ~_bool(summary, "testable")]
    if len(untested):
        why = untested.get("untested", pd.Series("", index=untested.index)).replace("", "no per-sample scores")
        reasons = "; ".join(f"{w} ({', '.join(dict.fromkeys(t))})" for w, t in untested["task"].groupby(why))
        items.append(f"{len(untested)} Δ without {MARK} test: {reasons}")
    return items


def _reference(summary: pd.DataFrame) -> str:
    return str(summary["reference"].iloc[0]) if "reference" in summary.columns and len(summary) else BASELINE


def wide(summary: pd.DataFrame, fmt: str, digits: int = 3, tasks: list[str] | None = None, ci: bool = False) -> pd.DataFrame:
    """The pivot: one row per (backbone, method, variant), one column per (task, metric) in ``tasks`` order (else by name)."""
    s = summary.assign(cell=[cell(row, fmt, digits, ci) for _, row in summary.iterrows()])
    index = ["backbone", "method", "variant"]
    rows = list(dict.fromkeys(zip(*(s[k] for k in index))))
    cols = sorted(dict.fromkeys(zip(s["task"], s["metric"])), key=lambda c: (tasks.index(c[0]) if tasks else 0, c))
    out = s.pivot(index=index, columns=["task", "metric"], values="cell")
    return out.reindex(index=pd.MultiIndex.from_tuples(rows, names=index),
                       columns=pd.MultiIndex.from_tuples(cols, names=["task", "metric"])).fillna(MISSING.get(fmt, ""))


def _latex_text(text: str) -> str:
    """A legend item as LaTeX text (the few symbols it uses, then the characters LaTeX reserves)."""
    for char, esc in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(char, esc)
    for sym, tex in (("Δ", r"$\Delta$"), (MARK, r"$^{\dagger}$"), ("±", r"$\pm$"), ("≥", r"$\geq$"), ("<", r"$<$")):
        text = text.replace(sym, tex)
    return text


def _latex(table: pd.DataFrame, items: list[str]) -> str:
    """booktabs tabular through pandas' Styler: labels escaped, cells kept as the LaTeX they already are; the
    legend as a comment above it and, where a cell is marked or has a paired interval, as a footnote below it."""
    flat = table.reset_index()
    labels = [("backbone", ""), ("method", ""), ("variant", "")]
    flat.columns = pd.MultiIndex.from_tuples([*labels, *table.columns])
    styler = flat.style.hide(axis="index").format_index(escape="latex", axis=1).format(escape="latex", subset=labels)
    body = styler.to_latex(hrules=True, column_format="lll" + "c" * table.shape[1], multicol_align="c")
    notes = [i for i in items if i.startswith((MARK, "[signed", "the test pairs"))]
    foot = "\n{\\footnotesize " + _latex_text("; ".join(notes)) + ".\\par}\n" if notes else ""
    return ("% " + "; ".join(items) + ".\n" if items else "") + body + foot


def _html(table: pd.DataFrame, note: str) -> str:
    flat = table.copy()
    flat.index = pd.MultiIndex.from_tuples([tuple(html.escape(v) for v in ix) for ix in flat.index], names=flat.index.names)
    flat.columns = pd.MultiIndex.from_tuples([tuple(html.escape(v) for v in c) for c in flat.columns],
                                             names=flat.columns.names)
    body = flat.to_html(escape=False, border=0, classes="leaderboard", sparsify=True)
    return f"{body}\n<p class=\"legend\">{html.escape(note)}</p>"


CSV_NAMES = {"ci_low": f"ci{CONFIDENCE * 100:.0f}_low", "ci_high": f"ci{CONFIDENCE * 100:.0f}_high",
             "delta_ci_low": f"delta_ci{CONFIDENCE * 100:.0f}_low",
             "delta_ci_high": f"delta_ci{CONFIDENCE * 100:.0f}_high", "marked": "significant"}


def render_summary(summary: pd.DataFrame, fmt: str = "markdown", digits: int = 3, tasks: list[str] | None = None,
                   ci: bool = False) -> str:
    """A summary (:func:`summarise`) as text in ``fmt``, columns in ``tasks`` order when given; ``ci`` adds
    the paired interval of each tested Δ to its cell (CSV always has it)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown table format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "csv":
        names = {**CSV_NAMES, "delta": f"delta_vs_{_reference(summary)}"}
        return summary.drop(columns=["sample_note"], errors="ignore").rename(columns=names).to_csv(index=False)
    table = wide(summary, fmt, digits, tasks, ci)
    items = legend_items(summary, fmt, ci)
    note = "; ".join(items) + "." if items else ""
    if fmt == "latex":
        return _latex(table, items)
    if fmt == "html":
        return _html(table, note)
    flat = table.reset_index()
    headers = ["backbone", "method", "variant", *[f"{t} {m}" for t, m in table.columns]]
    return tabulate(flat.values.tolist(), headers=headers, tablefmt="github") + (f"\n\n{note}" if note else "")


def render(results: Path, fmt: str = "markdown", tasks: list[str] | None = None, metric: str | None = None,
           methods: list[str] | None = None, backbones: list[str] | None = None, digits: int = 3, ci: bool = False,
           holm: bool = True, reference: str | None = None) -> str:
    """The leaderboard of the records under ``results`` as text in ``fmt`` (markdown, latex, csv or html);
    ``ci`` prints each tested Δ's paired interval, ``holm`` (default) adjusts the tests' p across the table.
    ``reference`` (default ``frozen``) is the method Δ compares with; named explicitly, it must have results
    among those shown (a UserError listing the methods there otherwise)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown table format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if digits < 0 or digits > 10:
        raise UserError(f"--digits {digits} is out of range: choose 0..10")
    df = load_frame(results, tasks, metric, methods, backbones)
    if reference is not None and reference not in set(df["method"]):
        raise UserError(f"--reference {reference}: no complete result of that method among those shown under {results} "
                        f"(methods there: {', '.join(sorted(set(df['method'])))}): choose one of them")
    return render_summary(summarise(df, holm=holm, reference=reference or BASELINE), fmt, digits, tasks, ci)
