"""Leaderboards from result records: pandas for the pivot, scipy for the intervals, tabulate for text.

Rows are backbone × method × variant (the ``frozen`` row first in each backbone's group), columns the
tasks' main metrics (or any metric asked for). A variant is one configuration
(:func:`benchmark.identity.variant_name`): two variants are two rows, never averaged together. A cell is the mean over seeds; with more than one seed it adds
± the sample standard deviation and the 95 % confidence interval of the mean from Student's t
distribution (``mean ± t(0.975, n-1)·std/√n``), since three seeds are far too few for a normal
interval. Each column marks its best entry (bold) and, with three or more entries, its second
(underlined in LaTeX and HTML, italic in Markdown), following the metric's direction; ties share a
rank. Δ is the difference to the ``frozen`` row of the same backbone evaluated with the same task
and backbone configuration, the baseline every transfer method has to beat. Only records with
``status == "ok"`` are read (:func:`benchmark.results.iter_results`), so a failed run is a missing
cell, never a number.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Iterable

import pandas as pd
from scipy import stats
from tabulate import tabulate

from benchmark.errors import UserError
from benchmark.config import config_hash
from benchmark.record import ResultRecord
from benchmark.results import iter_results

FORMATS = ("markdown", "latex", "csv", "html")
BASELINE = "frozen"
CONFIDENCE = 0.95
MISSING = {"markdown": "–", "html": "–", "latex": "--"}


def load_frame(results: Path, tasks: list[str] | None = None, metric: str | None = None,
               methods: list[str] | None = None, backbones: list[str] | None = None) -> pd.DataFrame:
    """:func:`frame` of the complete records under ``results``."""
    return frame(iter_results(results), tasks, metric, methods, backbones, where=str(results))


def frame(records: Iterable[ResultRecord], tasks: list[str] | None = None, metric: str | None = None,
          methods: list[str] | None = None, backbones: list[str] | None = None, where: str = "the results") -> pd.DataFrame:
    """One row per record: method, backbone (its label), variant, task, seed, metric, value, direction, and
    ``setting``, a hash of the task and backbone configuration (what Δ vs frozen must share).

    ``backbones`` filters on registry names; the table shows labels ("… (RANDOM INIT)").
    """
    rows = []
    for r in records:
        if (tasks and r.task not in tasks) or (methods and r.method not in methods) or (
                backbones and r.backbone not in backbones):
            continue
        name = metric or r.main_metric
        value = r.metrics.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        rows.append({
            "method": r.method, "backbone": r.backbone_label, "variant": r.variant, "task": r.task,
            "seed": r.seed, "metric": name, "value": float(value), "higher_is_better": bool(r.higher_is_better),
            "setting": config_hash([r.config.get("task"), r.config.get("backbone")]),
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


def summarise(df: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per (backbone, method, variant, task, metric): n, mean, std, CI bounds, Δ vs frozen, rank and entries
    in its column. Δ compares with the frozen entry of the same backbone, task and ``setting``; where
    frozen was run in more than one variant of that setting, Δ is left empty rather than guessed."""
    keys = ["backbone", "method", "variant", "task", "metric"]
    g = df.groupby(keys, sort=False)
    s = g["value"].agg(["count", "mean", "std"]).reset_index().rename(columns={"count": "n"})
    s["higher_is_better"] = g["higher_is_better"].first().values
    s["setting"] = g["setting"].first().values
    half = [ci_halfwidth(sd, n, confidence) for sd, n in zip(s["std"], s["n"])]
    s["ci_low"], s["ci_high"] = s["mean"] - half, s["mean"] + half
    frozen = s[s["method"] == BASELINE].groupby(["backbone", "task", "metric", "setting"])["mean"]
    base = frozen.first()[frozen.size() == 1]
    s["delta"] = [
        mean - base.get((b, t, m, c), math.nan) if meth != BASELINE else math.nan
        for meth, b, t, m, c, mean in zip(s["method"], s["backbone"], s["task"], s["metric"], s["setting"], s["mean"])
    ]
    signed = s["mean"].where(s["higher_is_better"], -s["mean"])
    s["rank"] = signed.groupby([s["task"], s["metric"]]).rank(method="min", ascending=False).astype(int)
    s["entries"] = s.groupby(["task", "metric"])["mean"].transform("size")
    s["_order"] = s["method"].ne(BASELINE)
    s = s.sort_values(["backbone", "_order", "method", "variant", "task", "metric"]).drop(columns=["_order", "setting"])
    return s.reset_index(drop=True)


def _num(x: float, digits: int, sign: bool = False) -> str:
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def cell(row: pd.Series, fmt: str, digits: int = 3) -> str:
    """One leaderboard cell: marked mean, Δ vs frozen, ± std and [95 % CI] (the last two with > 1 seed)."""
    mean = _num(row["mean"], digits)
    best = row["rank"] == 1 and row["entries"] >= 2
    second = row["rank"] == 2 and row["entries"] >= 3
    has_delta = not math.isnan(row["delta"])
    spread = row["n"] > 1 and not math.isnan(row["std"])
    delta = _num(row["delta"], digits, sign=True) if has_delta else ""
    std = _num(row["std"], digits) if spread else ""
    ci = f"[{_num(row['ci_low'], digits)}, {_num(row['ci_high'], digits)}]" if spread else ""
    if fmt == "latex":
        mean = f"\\textbf{{{mean}}}" if best else f"\\underline{{{mean}}}" if second else mean
        text = mean + (f"$_{{{delta}}}$" if has_delta else "")
        return text + (f" {{\\scriptsize $\\pm$ {std} {ci}}}" if spread else "")
    if fmt == "html":
        mean = f"<b>{mean}</b>" if best else f"<u>{mean}</u>" if second else mean
        text = mean + (f"<sub>{delta}</sub>" if has_delta else "")
        return text + (f" ± {std} <small>{ci}</small>" if spread else "")
    mean = f"**{mean}**" if best else f"_{mean}_" if second else mean
    return mean + (f" ({delta})" if has_delta else "") + (f" ± {std} {ci}" if spread else "")


def legend(summary: pd.DataFrame, fmt: str) -> str:
    """One sentence saying what the marks and numbers in the cells mean."""
    second = {"latex": "underlined", "html": "underlined"}.get(fmt, "italic")
    seeds = sorted(set(summary["n"]))
    where = "in brackets" if fmt == "markdown" else "subscript"
    text = (f"Bold: best, {second}: second per column; Δ ({where}) vs the {BASELINE} row of the same backbone and "
            "task setting; each variant (configuration) is its own row, never averaged with another")
    if max(seeds) > 1:
        text += (f"; ± sample std over seeds and [{CONFIDENCE:.0%} CI of the mean, t-distribution]"
                 f" (seeds per cell: {', '.join(map(str, seeds))})")
    return text + "."


def wide(summary: pd.DataFrame, fmt: str, digits: int = 3, tasks: list[str] | None = None) -> pd.DataFrame:
    """The pivot: one row per (backbone, method, variant), one column per (task, metric) in ``tasks`` order (else by name)."""
    s = summary.assign(cell=[cell(row, fmt, digits) for _, row in summary.iterrows()])
    index = ["backbone", "method", "variant"]
    rows = list(dict.fromkeys(zip(*(s[k] for k in index))))
    cols = sorted(dict.fromkeys(zip(s["task"], s["metric"])), key=lambda c: (tasks.index(c[0]) if tasks else 0, c))
    out = s.pivot(index=index, columns=["task", "metric"], values="cell")
    return out.reindex(index=pd.MultiIndex.from_tuples(rows, names=index),
                       columns=pd.MultiIndex.from_tuples(cols, names=["task", "metric"])).fillna(MISSING.get(fmt, ""))


def _latex(table: pd.DataFrame, note: str) -> str:
    """booktabs tabular through pandas' Styler: labels escaped, cells kept as the LaTeX they already are."""
    flat = table.reset_index()
    labels = [("backbone", ""), ("method", ""), ("variant", "")]
    flat.columns = pd.MultiIndex.from_tuples([*labels, *table.columns])
    styler = flat.style.hide(axis="index").format_index(escape="latex", axis=1).format(escape="latex", subset=labels)
    body = styler.to_latex(hrules=True, column_format="lll" + "c" * table.shape[1], multicol_align="c")
    return f"% {note}\n{body}"


def _html(table: pd.DataFrame, note: str) -> str:
    flat = table.copy()
    flat.index = pd.MultiIndex.from_tuples([tuple(html.escape(v) for v in ix) for ix in flat.index], names=flat.index.names)
    flat.columns = pd.MultiIndex.from_tuples([tuple(html.escape(v) for v in c) for c in flat.columns],
                                             names=flat.columns.names)
    body = flat.to_html(escape=False, border=0, classes="leaderboard", sparsify=True)
    return f"{body}\n<p class=\"legend\">{html.escape(note)}</p>"


def render_summary(summary: pd.DataFrame, fmt: str = "markdown", digits: int = 3, tasks: list[str] | None = None) -> str:
    """A summary (:func:`summarise`) as text in ``fmt``, columns in ``tasks`` order when given."""
    if fmt not in FORMATS:
        raise UserError(f"unknown table format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "csv":
        out = summary.rename(columns={"ci_low": f"ci{CONFIDENCE * 100:.0f}_low", "ci_high": f"ci{CONFIDENCE * 100:.0f}_high",
                                      "delta": f"delta_vs_{BASELINE}"})
        return out.to_csv(index=False)
    table = wide(summary, fmt, digits, tasks)
    note = legend(summary, fmt)
    if fmt == "latex":
        return _latex(table, note)
    if fmt == "html":
        return _html(table, note)
    flat = table.reset_index()
    headers = ["backbone", "method", "variant", *[f"{t} {m}" for t, m in table.columns]]
    return tabulate(flat.values.tolist(), headers=headers, tablefmt="github") + f"\n\n{note}"


def render(results: Path, fmt: str = "markdown", tasks: list[str] | None = None, metric: str | None = None,
           methods: list[str] | None = None, backbones: list[str] | None = None, digits: int = 3) -> str:
    """The leaderboard of the records under ``results`` as text in ``fmt`` (markdown, latex, csv or html)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown table format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if digits < 0 or digits > 10:
        raise UserError(f"--digits {digits} is out of range: choose 0..10")
    return render_summary(summarise(load_frame(results, tasks, metric, methods, backbones)), fmt, digits, tasks)
