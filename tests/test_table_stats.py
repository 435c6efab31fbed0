"""Significance marks in `bench table`, on constructed records whose per-sample scores have known answers.

frozen scores ``BASE``; advise adds a constant 0.1 to every sample (Δ exact, interval [0.1, 0.1], the
smallest possible p); cosettle adds +0.05 and -0.05 in turn (Δ 0, an interval around 0, p near 1);
finetune has no per-sample scores (untestable, so unmarked and counted in the legend).
"""
from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.results import SCHEMA_VERSION, result_path, write_json_atomic
from benchmark.stats import holm
from benchmark.table import load_frame, render, summarise
from tests.test_table import cells, record

N = 40
IDS = [f"video{i:02d}" for i in range(N)]
BASE = np.linspace(0.2, 0.8, N)
SHIFT = 0.1
WOBBLE = np.where(np.arange(N) % 2 == 0, 0.05, -0.05)


def scored(root: Path, method: str, scores: np.ndarray, task: str = "ssv2_cls", ids: list[str] = IDS,
           with_samples: bool = True) -> None:
    """A record whose headline metric is the mean of its per-sample column (so both Δ agree)."""
    record(root, method, "mae", task, 0, "score", float(np.mean(scores)),
           samples={"id": ids, "score": [float(v) for v in scores]} if with_samples else None, sample_unit="video")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stats") / "res"
    scored(root, "frozen", BASE)
    scored(root, "advise", BASE + SHIFT)
    scored(root, "cosettle", BASE + WOBBLE)
    scored(root, "finetune", BASE + SHIFT, with_samples=False)
    return root


def test_mark_where_the_interval_excludes_zero_and_not_where_it_does_not(results):
    text = render(results, "markdown")
    got = cells(text)
    assert got[("mae", "advise")] == ["**0.600** (+0.100†)"]
    assert "†" not in got[("mae", "cosettle")][0] and "(+0.000)" in got[("mae", "cosettle")][0].replace("-0.000", "+0.000")
    assert "†" not in got[("mae", "finetune")][0]  # the same shift, but nothing to test it on
    assert "†: the paired 95% bootstrap CI of Δ excludes 0 and p < 0.05 (Holm-adjusted across the 2 tested Δ" in text
    assert "1 Δ without † test: no per-sample scores" in text
    assert "per-sample column whose mean is not exactly" not in text  # here the metric is the column's mean


def test_ci_prints_the_paired_interval(results, capsys):
    assert main(["table", "--results", str(results), "--ci"]) == 0
    got = cells(capsys.readouterr().out)
    assert got[("mae", "advise")] == ["**0.600** (+0.100† [+0.100, +0.100])"]  # a constant shift: a point interval
    lo, hi = map(float, re.search(r"\[([-+][\d.]+), ([-+][\d.]+)\]", got[("mae", "cosettle")][0]).groups())
    assert lo < 0 < hi
    assert "[" not in got[("mae", "finetune")][0]


def test_latex_mark_and_footnote(results):
    text = render(results, "latex", ci=True)
    assert "$_{+0.100^{\\dagger}\\,[+0.100, +0.100]}$" in text
    table, foot = text.split("\\end{tabular}")
    assert foot.strip().startswith("{\\footnotesize $^{\\dagger}$: the paired 95\\% bootstrap CI of $\\Delta$ excludes 0")
    assert "p $<$ 0.05 (Holm-adjusted" in foot and foot.strip().endswith("\\par}")


def test_csv_has_the_numbers(results):
    df = pd.read_csv(io.StringIO(render(results, "csv"))).set_index("method")
    for col in ("delta_vs_frozen", "delta_ci95_low", "delta_ci95_high", "p", "p_holm", "test", "significant"):
        assert col in df.columns
    adv, cos = df.loc["advise"], df.loc["cosettle"]
    assert adv["delta_vs_frozen"] == pytest.approx(SHIFT) and adv["delta_ci95_low"] == pytest.approx(SHIFT)
    assert adv["significant"] and not cos["significant"] and not df.loc["finetune", "significant"]
    assert "sign-flip permutation test" in adv["test"]
    assert cos["delta_ci95_low"] < 0 < cos["delta_ci95_high"] and cos["p"] > 0.5
    assert [adv["p_holm"], cos["p_holm"]] == pytest.approx(list(holm([adv["p"], cos["p"]])))
    assert math.isnan(df.loc["finetune", "p"])


def test_holm_takes_a_mark_away_that_no_holm_keeps(tmp_path, capsys):
    """Three methods each better on all 6 samples: exact sign-flip p = 2/64 each, under 0.05 alone,
    3·2/64 > 0.05 after Holm."""
    ids = IDS[:6]
    scored(tmp_path, "frozen", BASE[:6], ids=ids)
    for method in ("a", "b", "c"):
        scored(tmp_path, method, BASE[:6] + SHIFT, ids=ids)
    held = cells(render(tmp_path, "markdown"))
    assert all("†" not in held[("mae", m)][0] for m in "abc")
    assert main(["table", "--results", str(tmp_path), "--no-holm", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("method")
    assert df.loc["a", "p"] == pytest.approx(2 / 64) and df.loc["a", "significant"] and math.isnan(df.loc["a", "p_holm"])
    assert "not adjusted" in render(tmp_path, "markdown", holm=False)
    assert all("†" in cells(render(tmp_path, "markdown", holm=False))[("mae", m)][0] for m in "abc")


@pytest.mark.parametrize("task, main_metric, column, unit, pooled", [
    ("davis", "J&F-Mean", "J&F", "sequence", True),  # J&F-Mean averages objects; the column is per sequence
    ("vip", "mIoU", "mIoU", "video", True),  # same name, but mIoU pools tp/union over videos
    ("ssv2_cls", "top1", "correct", "video", False),  # top-1 IS the mean of `correct`: nothing to note
    ("ucf101_retrieval", "R@1", "", "query", False),
])
def test_legend_names_the_tasks_whose_headline_is_not_the_mean_of_the_column(tmp_path, task, main_metric, column, unit,
                                                                              pooled):
    """Keyed on the records (headline vs mean of the paired column), not on the column's name."""
    for method, scores in (("frozen", BASE), ("advise", BASE + SHIFT)):
        record(tmp_path, method, "mae", task, 0, main_metric, float(np.mean(scores)) + (0.01 if pooled else 0.0),
               samples={"id": IDS, column or main_metric: list(map(float, scores))}, sample_metric=column, sample_unit=unit)
    text = render(tmp_path, "markdown")
    assert "(+0.100†)" in text
    note = f"{task} ({main_metric} vs the mean per-{unit} {column or main_metric})"
    assert (note in text) == pooled and ("whose mean is not exactly the headline metric" in text) == pooled


def test_a_headline_without_a_per_sample_form_is_untested_and_says_why(tmp_path):
    """tradeoff: per-video cycle accuracy is recorded, but the margin D is pairwise over videos."""
    for method, scores in (("frozen", BASE), ("advise", BASE + SHIFT)):
        write_json_atomic(result_path(tmp_path, method, "mae", "tradeoff", "default", 0), {
            "schema_version": SCHEMA_VERSION, "method": method, "backbone": "mae", "backbone_label": "mae",
            "task": "tradeoff", "seed": 0, "status": "ok", "main_metric": "D_margin", "higher_is_better": True,
            "metrics": {"D_margin": float(scores[0]), "cycle_acc": float(np.mean(scores))}, "variant": "default",
            "config": {"task": {}}, "samples": {"id": IDS, "cycle_acc": list(map(float, scores))},
            "sample_metric": "cycle_acc", "sample_unit": "video"})
    text = render(tmp_path, "markdown")
    assert "†" not in cells(text)[("mae", "advise")][0]
    assert "1 Δ without † test: the headline D_margin has no per-video form" in text and "(tradeoff)" in text
    summary = summarise(load_frame(tmp_path))
    assert summary.set_index("method").loc["advise", "untested"].startswith("the headline D_margin has no per-video form")


def test_a_single_run_prints_no_legend_items_that_do_not_apply(tmp_path):
    record(tmp_path, "frozen", "mae", "davis", 0, "J&F-Mean", 0.5)
    assert render(tmp_path, "markdown").splitlines()[-1].startswith("| mae ")  # the table, and nothing to explain
    record(tmp_path, "frozen", "mae", "vip", 0, "mIoU", 0.4)
    record(tmp_path, "advise", "mae", "davis", 0, "J&F-Mean", 0.6)
    legend = render(tmp_path, "markdown").splitlines()[-1]
    assert legend.startswith("Bold: best per column; Δ (in brackets)")  # no "second" with two entries
    assert "italic" not in legend and "seeds" not in legend and "RANDOM" not in legend
    assert "1 Δ without † test" in legend and "variant" not in legend


def test_a_nan_record_is_no_cell_and_breaks_nothing(results, tmp_path):
    import shutil

    root = tmp_path / "res"
    shutil.copytree(results, root)
    scored(root, "advise", BASE * math.nan, task="davis")
    got = cells(render(root, "markdown"))
    assert got[("mae", "advise")] == ["**0.600** (+0.100†)"]  # the davis column does not exist: no finite value


def test_ci_with_published_is_refused_not_ignored(results, capsys):
    assert main(["table", "--results", str(results), "--published", "--ci"]) == 2
    assert "--ci, --no-holm and --reference apply to the leaderboard alone" in capsys.readouterr().err


def test_reference_option_takes_deltas_and_tests_against_another_method(results, capsys):
    """advise as the reference: frozen is 0.1 below it on every sample, cosettle about 0.1 below."""
    assert main(["table", "--results", str(results), "--reference", "advise"]) == 0
    text = capsys.readouterr().out
    got = cells(text)
    assert got[("mae", "frozen")] == ["0.500 (-0.100†)"] and "(" not in got[("mae", "advise")][0]
    assert "Δ (in brackets) vs the advise row" in text and "vs the frozen row" not in text
    assert main(["table", "--results", str(results), "--reference", "advise", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("method")
    assert df.loc["frozen", "delta_vs_advise"] == pytest.approx(-SHIFT) and df.loc["frozen", "significant"]
    assert (df["reference"] == "advise").all() and math.isnan(df.loc["advise", "delta_vs_advise"])


@pytest.mark.parametrize("value, message", [
    ("nosuch", "--reference nosuch: no complete result of that method among those shown"),
    ("a,b", "--reference takes one name"),
])
def test_unknown_reference_is_one_line_and_exit_2(results, capsys, value, message):
    assert main(["table", "--results", str(results), "--reference", value]) == 2
    out = capsys.readouterr()
    assert out.out == "" and message in out.err and out.err.count("\n") == 1
