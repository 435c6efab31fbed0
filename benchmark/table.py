"""Leaderboards from result records: pandas for the pivot, tabulate for text.

Rows are method × backbone, columns the tasks' main metrics (or any metric asked for). A cell is the
mean over seeds, with ± std when there is more than one seed; each column marks its best entry (per
the metric's direction) and shows Δ against the ``frozen`` row of the same backbone, the comparison
every transfer method has to win.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from benchmark.errors import UserError
from benchmark.results import iter_results

FORMATS = ("markdown", "latex", "csv", "html")


def load_frame(results: Path, tasks: list[str] | None = None, metric: str | None = None) -> pd.DataFrame:
    """One row per record and metric: method, backbone, task, seed, metric, value, higher_is_better."""
    rows = []
    for r in iter_results(results):
        if tasks and r["task"] not in tasks:
            continue
        name = metric or r["main_metric"]
        value = r["metrics"].get(name)
        if not isinstance(value, (int, float)):
            continue
        rows.append({
            "method": r["method"], "backbone": r.get("backbone_label", r["backbone"]), "task": r["task"],
            "seed": r["seed"], "metric": name, "value": float(value), "higher_is_better": r["higher_is_better"],
        })
    if not rows:
        raise UserError(f"no complete results under {results}{' for ' + ', '.join(tasks) if tasks else ''}: run `bench run` first")
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, seed count and Δ vs frozen per (method, backbone, column)."""
    df = df.assign(column=df["task"] + " " + df["metric"])
    g = df.groupby(["method", "backbone", "column"], sort=True)
    s = g["value"].agg(["mean", "std", "count"]).reset_index()
    s["higher_is_better"] = g["higher_is_better"].first().values
    base = s[s["method"] == "frozen"].set_index(["backbone", "column"])["mean"]
    s["delta"] = [
        m - base.get((b, c), math.nan) if meth != "frozen" else math.nan
        for meth, b, c, m in zip(s["method"], s["backbone"], s["column"], s["mean"])
    ]
    s["rank"] = s.groupby("column")["mean"].rank(method="min", ascending=False)
    lower = ~s["higher_is_better"].astype(bool)
    s.loc[lower, "rank"] = s[lower].groupby("column")["mean"].rank(method="min", ascending=True)
    return s


def _cell(row: pd.Series, fmt: str) -> str:
    text = f"{row['mean']:.4g}"
    if row["count"] > 1 and not math.isnan(row["std"]):
        text += f" ± {row['std']:.2g}" if fmt != "latex" else f" $\\pm$ {row['std']:.2g}"
    if row["rank"] == 1:
        text = f"**{text}**" if fmt == "markdown" else f"\\textbf{{{text}}}" if fmt == "latex" else f"<b>{text}</b>"
    elif row["rank"] == 2 and fmt == "latex":
        text = f"\\underline{{{text}}}"
    if not math.isnan(row["delta"]):
        sign = "+" if row["delta"] >= 0 else ""
        text += f"$_{{{sign}{row['delta']:.3g}}}$" if fmt == "latex" else f" ({sign}{row['delta']:.3g})"
    return text


def render(results: Path, fmt: str = "markdown", tasks: list[str] | None = None, metric: str | None = None) -> str:
    """The leaderboard as text in ``fmt`` (markdown, latex, csv or html)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown table format {fmt!r}: choose one of {', '.join(FORMATS)}")
    s = summarise(load_frame(results, tasks, metric))
    if fmt == "csv":
        return s.drop(columns=["rank"]).to_csv(index=False)
    s["cell"] = [_cell(row, fmt) for _, row in s.iterrows()]
    wide = s.pivot(index=["method", "backbone"], columns="column", values="cell").fillna("–").reset_index()
    if fmt == "html":
        return wide.to_html(index=False, escape=False, border=0)
    return tabulate(wide, headers="keys", tablefmt="github" if fmt == "markdown" else "latex_raw", showindex=False)
