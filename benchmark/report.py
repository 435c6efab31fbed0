"""``bench report``: one self-contained HTML page of a results folder.

The page holds the leaderboard (:mod:`benchmark.table`), the figures tasks draw themselves (such as
tradeoff's consistency/separability plot), per-task bar charts with 95 % confidence intervals, the
cost of every (method, backbone) and the provenance of every record, plus the failures a sweep left.
Plots are drawn with matplotlib's Agg canvas (no display, no global pyplot state) and embedded as
base64 PNG, and the CSS is inline, so the file can be mailed or archived and opens offline exactly as
it was written.

Each task's chart has two panels: the metric per (backbone, method), with the 95 % t-interval of the
mean over seeds where there are several (clipped at 0 for a metric whose values are all ≥ 0, as the
table says), and Δ vs frozen with the paired 95 % bootstrap interval of :mod:`benchmark.stats` drawn
as a line (no caps: it is an interval, not a ± spread). Under the charts one sentence per task says
whose change is significant, Holm-adjusted across the leaderboard's comparisons by default. A
RANDOM-INIT backbone is never ranked (see :mod:`benchmark.table`); a NaN metric is no bar and no point.

A task's own figure comes from its class (:meth:`tasks.base.Task.report_figure`, reached through the
task registry), so a task added in one file, a plugin's included, brings its plot with it; the
trade-off plot (Co-Settle's Figure 1) lives in ``tasks/tradeoff.py`` that way.
"""
from __future__ import annotations

import base64
import html
import io
import math
from datetime import datetime, timezone
from pathlib import Path
from collections import Counter
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmark.errors import UserError
from benchmark.record import ResultRecord
from benchmark.results import iter_results
from benchmark.table import BASELINE, CONFIDENCE, MARK, frame, render_summary, summarise

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e5e5e5; text-align: left; vertical-align: top; }
thead th { background: #f4f4f4; }
.legend, .note { color: #555; font-size: 0.9em; }
img { max-width: 100%; display: block; margin: 1em 0; }
pre { background: #f8f8f8; padding: 0.5em; overflow-x: auto; font-size: 0.8em; }
"""


def load_records(results: Path) -> tuple[list[ResultRecord], list[ResultRecord]]:
    """Complete records and failed ones, read by the store's reader (every schema version)."""
    return list(iter_results(results)), list(iter_results(results, failed=True))


def labels(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(method, variant) → the method's name, or ``method [variant]`` where it was run in several variants."""
    pairs = list(dict.fromkeys(pairs))
    count = Counter(m for m, _ in pairs)
    return {(m, v): m if count[m] == 1 else f"{m} [{v}]" for m, v in pairs}


def png(fig: Figure) -> str:
    """The figure as an ``<img>`` with a base64 PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    title = fig.axes[0].get_title() if fig.axes else "plot"
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'


def _legend_beside(ax, source=None) -> None:
    """The legend (of ``source``'s artists, else ``ax``'s) right of ``ax``, so it never covers a bar."""
    ax.legend(*(source or ax).get_legend_handles_labels(), fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1),
              borderaxespad=0)


def bar_figure(summary: pd.DataFrame, task: str, metric: str) -> Figure:
    """One task: the metric per backbone and method (error bars: 95 % t-interval over seeds, only with
    several seeds) and Δ vs frozen (the paired 95 % bootstrap interval as a line, † where significant)."""
    s = summary[(summary["task"] == task) & (summary["metric"] == metric)]
    label = labels(zip(s["method"], s["variant"]))
    s = s.assign(method=[label[mv] for mv in zip(s["method"], s["variant"])])
    backbones = list(dict.fromkeys(s["backbone"]))
    methods = sorted(s["method"].unique(), key=lambda m: (m != BASELINE, m))
    others = [m for m in methods if m != BASELINE]
    colour = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    deltas = s["delta"].notna().any()
    width = 1.6 * len(backbones) * max(1, len(methods) / 2)
    fig = Figure(figsize=(max(5.0, width) * (2 if deltas else 1) + 2, 3.6))
    axes = fig.subplots(1, 2 if deltas else 1, squeeze=False)[0]
    x = np.arange(len(backbones))
    step = 0.8 / len(methods)
    for i, method in enumerate(methods):
        rows = s[s["method"] == method].set_index("backbone").reindex(backbones)
        spread = rows["n"].fillna(1).gt(1).to_numpy()
        low = np.where(spread, rows["mean"] - rows["ci_low"], 0.0)
        high = np.where(spread, rows["ci_high"] - rows["mean"], 0.0)
        axes[0].bar(x + (i - (len(methods) - 1) / 2) * step, rows["mean"].to_numpy(), step, label=method, color=colour[method],
                    yerr=np.nan_to_num(np.vstack([low, high])) if spread.any() else None, capsize=3 if spread.any() else 0)
    direction = "higher is better" if bool(s["higher_is_better"].iloc[0]) else "lower is better"
    axes[0].set_ylabel(f"{metric} ({direction})")
    axes[0].set_title(f"{task}: {metric}")
    if deltas:
        _delta_panel(axes[1], s, backbones, others, colour)
    for ax in axes:
        ax.set_xticks(x, backbones, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.12)  # room for the † above a bar
    _legend_beside(axes[-1], axes[0])  # every method has a bar on the left; colours are shared
    return fig


def _delta_panel(ax, s: pd.DataFrame, backbones: list[str], others: list[str], colour: dict[str, str]) -> None:
    """Δ vs frozen per backbone and method; the paired interval as a capless line, † above significant bars."""
    x = np.arange(len(backbones))
    step = 0.8 / max(1, len(others))
    for i, method in enumerate(others):
        rows = s[s["method"] == method].set_index("backbone").reindex(backbones)
        pos = x + (i - (len(others) - 1) / 2) * step
        ax.bar(pos, rows["delta"].to_numpy(), step, color=colour[method], label=method)
        tested = rows["testable"].fillna(False).astype(bool).to_numpy()
        ax.vlines(pos[tested], rows["delta_ci_low"].to_numpy()[tested], rows["delta_ci_high"].to_numpy()[tested],
                  color="black", lw=1.5)
        for px, d, hi, marked in zip(pos, rows["delta"], rows["delta_ci_high"], rows["marked"].fillna(False)):
            if marked:
                ax.annotate(MARK, (px, max(d, hi if math.isfinite(hi) else d)), textcoords="offset points",
                            xytext=(0, 2), ha="center", fontsize=10)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_ylabel(f"Δ vs {BASELINE} (line: paired {CONFIDENCE:.0%} CI)")
    ax.set_title(f"Δ vs {BASELINE}")


def _p(r: pd.Series) -> str:
    p, adjusted = (r["p_holm"], "Holm-adjusted p") if math.isfinite(r["p_holm"]) else (r["p"], "p")
    return f"{adjusted} = {p:.2g}"


def significance_sentences(summary: pd.DataFrame, digits: int = 3) -> list[str]:
    """One sentence per task: for each method and backbone, whether its Δ vs frozen is significant."""
    out = []
    rows = summary[summary["delta"].notna()]
    label = labels(zip(summary["method"], summary["variant"]))
    for task, t in rows.groupby("task", sort=False):
        parts = []
        for _, r in t.iterrows():
            who = f"{label[r['method'], r['variant']]} on {r['backbone']}"
            d = f"Δ = {r['delta']:+.{digits}f}"
            if not r["testable"]:
                parts.append(f"{who} ({d}) cannot be tested ({r['untested'] or 'no per-sample scores'})")
                continue
            change = "no change" if r["delta"] == 0 else "a gain" if (r["delta"] > 0) == bool(r["higher_is_better"]) else "a loss"
            ci = f"CI [{r['delta_ci_low']:+.{digits}f}, {r['delta_ci_high']:+.{digits}f}]"
            verdict = change.replace("a ", "a significant ") if r["marked"] else f"{change}, not significant"
            parts.append(f"{who} shows {verdict} ({d}, {ci}, {_p(r)})")
        metric = t["metric"].iloc[0]
        out.append(f"On {task} ({metric}, vs {BASELINE}): " + "; ".join(parts) + ".")
    return out


def task_figures(records: list[ResultRecord]) -> str:
    """The figures the tasks of ``records`` draw themselves (:meth:`tasks.base.Task.report_figure`), in
    task-name order. Task classes are reached through the registry, as everywhere in the core; a task
    that is not registered here (a plugin's, reported without its ``--plugin`` file) draws nothing, and
    so does a page none of whose tasks has a figure (no empty heading)."""
    from benchmark.registry import TASKS

    known = set(TASKS.names())
    parts = []
    for task in sorted({r.task for r in records} & known):
        fragment = TASKS.get(task).report_figure([r for r in records if r.task == task])
        if fragment:
            parts.append(f'<section class="task-figure" id="figure-{html.escape(task)}">\n{fragment}\n</section>')
    return "\n".join(parts)


def cost_table(records: list[ResultRecord]) -> pd.DataFrame:
    """Per (backbone, method label): trainable parameters, training time and memory, evaluation time and memory."""
    rows = []
    label = labels((r.method, r.variant) for r in records)
    for r in records:
        training, prov, timings = r.training or {}, r.provenance or {}, r.timings or {}
        train_bytes = training.get("peak_memory_bytes")
        rows.append({
            "backbone": r.backbone_label, "method": label[r.method, r.variant], "seed": r.seed,
            "trainable params": training.get("trainable_params", math.nan),
            "train time (s)": training.get("train_seconds", timings.get("fit_s", math.nan)),
            "train peak memory (MiB)": train_bytes / 2**20 if isinstance(train_bytes, (int, float)) else math.nan,
            "eval time (s)": timings.get("eval_s", math.nan),
            "eval peak memory (MiB)": prov.get("peak_memory_mb", math.nan),
        })
    df = pd.DataFrame(rows)
    per_seed = df.groupby(["backbone", "method", "seed"], sort=False).agg({
        "trainable params": "max", "train time (s)": "max", "train peak memory (MiB)": "max",
        "eval time (s)": "sum", "eval peak memory (MiB)": "max"})
    out = per_seed.groupby(["backbone", "method"], sort=False).mean()
    out.insert(0, "seeds", per_seed.groupby(["backbone", "method"], sort=False).size())
    out = out.reset_index().astype({"seeds": "Int64", "trainable params": "Int64"})
    out["_order"] = out["method"].ne(BASELINE)
    return out.sort_values(["backbone", "_order", "method"]).drop(columns="_order").reset_index(drop=True)


def provenance_table(records: list[ResultRecord]) -> pd.DataFrame:
    """One row per record: where, when, with which code, config, weights and data it was produced."""
    rows = []
    for r in records:
        prov = r.provenance or {}
        git = prov.get("git") or {}
        commit = (git.get("commit") or "?")[:10] + (" (dirty)" if git.get("dirty") else "")
        packages = prov.get("packages") or {}
        rows.append({
            "backbone": r.backbone_label, "method": r.method, "variant": r.variant, "task": r.task, "seed": r.seed,
            "commit": commit, "device": prov.get("device", "?"), "host": prov.get("hostname", "?"),
            "torch": packages.get("torch", "?"), "timm": packages.get("timm", "?"),
            "finished": prov.get("finished", "?"), "weights": r.weights_id or "?", "identity": r.identity[:12] or "(schema 1)",
        })
    return pd.DataFrame(rows)


def provenance_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Each provenance field's distinct values with their record counts: one glance says whether runs are comparable."""
    rows = [{"field": col, "values": ", ".join(f"{v} ({n})" for v, n in table[col].value_counts().items())}
            for col in ("commit", "device", "host", "torch", "timm", "weights")]
    return pd.DataFrame(rows)


def _frame_html(df: pd.DataFrame, classes: str) -> str:
    return df.to_html(index=False, border=0, classes=classes, na_rep="–", float_format=lambda v: f"{v:,.1f}")


def _failures_html(failed: list[ResultRecord]) -> str:
    if not failed:
        return '<p class="note" id="no-failures">No failed runs.</p>'
    items = []
    for r in failed:
        items.append(
            f"<details><summary>{html.escape(r.method)} × {html.escape(r.backbone)} × {html.escape(r.task)} "
            f"[{html.escape(r.variant)}] (seed {r.seed}): {html.escape(r.error)}</summary>"
            f"<pre>{html.escape(r.traceback)}</pre></details>"
        )
    return ('<p class="note">These runs failed; they count as missing, and rerunning the same sweep retries them.</p>'
            + "".join(items))


def build(results: Path, title: str = "i2v-bench report", digits: int = 3, holm: bool = True) -> str:
    """The HTML page of the records under ``results`` (``holm``: adjust the tests' p across the leaderboard)."""
    ok, failed = load_records(results)
    if not ok:
        raise UserError(f"no complete results under {results}: run `bench run` or `bench sweep` first")
    summary = summarise(frame(ok, where=str(results)), holm=holm)
    bars = "".join(png(bar_figure(summary, t, m)) for t, m in dict.fromkeys(zip(summary["task"], summary["metric"])))
    seeds = int(summary["n"].max())
    prov = provenance_table(ok)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="note">{len(ok)} complete results, {len(failed)} failed, from <code>{html.escape(str(results))}</code>;
generated {generated}.</p>
<h2 id="leaderboard">Leaderboard</h2>
{render_summary(summary, "html", digits)}
{task_figures(ok)}
<h2 id="tasks">Per-task results</h2>
<p class="note">Left: mean over seeds{f"; error bars: {CONFIDENCE:.0%} CI of the mean (t-distribution, clipped at 0 for a metric whose values are all ≥ 0)" if seeds > 1 else ""}.
Right: Δ vs {BASELINE} of the same backbone; the black line is the paired {CONFIDENCE:.0%} bootstrap CI of the per-sample Δ
({MARK}: CI excludes 0 and p &lt; 0.05{", Holm-adjusted across the leaderboard" if holm else ", not adjusted"}).</p>
{bars}
{"".join(f'<p class="significance">{html.escape(t)}</p>' for t in significance_sentences(summary, digits))}
<h2 id="cost">Cost</h2>
<p class="note">Per (backbone, method), mean over seeds: trainable parameters and training time and peak memory
(of the method's training record), summed evaluation time over tasks and the evaluation process's peak memory.</p>
{_frame_html(cost_table(ok), "cost")}
<h2 id="failures">Failures</h2>
{_failures_html(failed)}
<h2 id="provenance">Provenance</h2>
{_frame_html(provenance_summary(prov), "provenance-summary")}
<details><summary>Every record ({len(prov)})</summary>
{_frame_html(prov, "provenance")}
</details>
</body></html>
"""


def write(results: Path, out: Path, title: str = "i2v-bench report", holm: bool = True) -> Path:
    """Write the page of ``results`` to ``out`` (folders created)."""
    page = build(results, title, holm=holm)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write the report to {out} ({e.strerror}): choose a writable --out path") from None
    return out
