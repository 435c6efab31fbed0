"""Leaderboard cells on constructed records: mean ± std, t-interval, best/second marks, Δ vs frozen."""
from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.errors import UserError
from benchmark.results import SCHEMA_VERSION, result_path, write_json_atomic
from benchmark.table import ci_halfwidth, render

T_975_2 = 4.302652729911275  # Student's t, 97.5th percentile, 2 degrees of freedom (any statistics table)


def record(root: Path, method: str, backbone: str, task: str, seed: int, metric: str, value: float,
           higher: bool = True, status: str = "ok", label: str | None = None, variant: str = "default",
           task_config: dict | None = None, samples: dict | None = None, sample_metric: str = "",
           sample_unit: str = "") -> None:
    write_json_atomic(result_path(root, method, backbone, task, variant, seed), {
        "schema_version": SCHEMA_VERSION, "method": method, "backbone": backbone, "backbone_label": label or backbone,
        "task": task, "seed": seed, "status": status, "main_metric": metric, "higher_is_better": higher,
        "metrics": {metric: value}, "variant": variant, "config": {"task": task_config or {}},
        "samples": samples or {}, "sample_metric": sample_metric, "sample_unit": sample_unit,
    })


@pytest.fixture
def results(tmp_path) -> Path:
    """mae: three seeds of frozen, cosettle, advise on davis (J&F, higher is better); one seed on thumos.
    dino: one seed; a lower-is-better task; a failed record that must not count."""
    root = tmp_path / "res"
    for seed, (f, c, a) in enumerate([(0.50, 0.60, 0.55), (0.52, 0.61, 0.56), (0.54, 0.65, 0.57)]):
        record(root, "frozen", "mae", "davis", seed, "J&F-Mean", f)
        record(root, "cosettle", "mae", "davis", seed, "J&F-Mean", c)
        record(root, "advise", "mae", "davis", seed, "J&F-Mean", a)
    record(root, "frozen", "mae", "thumos_loc", 0, "mAP", 10.0)
    record(root, "cosettle", "mae", "thumos_loc", 0, "mAP", 12.0)
    record(root, "frozen", "dino_v", "davis", 0, "J&F-Mean", 0.70, label="dino_v (RANDOM INIT)")
    record(root, "frozen", "dino_v", "d_intra", 0, "D", 0.30, higher=False, label="dino_v (RANDOM INIT)")
    record(root, "cosettle", "dino_v", "d_intra", 0, "D", 0.20, higher=False, label="dino_v (RANDOM INIT)")
    record(root, "advise", "dino_v", "davis", 0, "J&F-Mean", 0.99, status="failed", label="dino_v (RANDOM INIT)")
    return root


def cells(text: str) -> dict[tuple[str, str], list[str]]:
    """Markdown table → {(backbone, method): [cells...]} (variant ``default``), else {(backbone, method, variant): …}."""
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    out = {}
    for line in rows[1:]:
        parts = [p.strip() for p in line.strip("|").split("|")]
        out[(parts[0], parts[1]) if parts[2] == "default" else (parts[0], parts[1], parts[2])] = parts[3:]
    return out


def test_ci_is_the_student_t_interval():
    assert ci_halfwidth(0.02, 3) == pytest.approx(T_975_2 * 0.02 / math.sqrt(3))
    assert math.isnan(ci_halfwidth(0.02, 1))


def test_markdown_cells(results):
    text = render(results, "markdown")
    head = text.splitlines()[0]
    assert [h.strip() for h in head.strip("|").split("|")] == ["backbone", "method", "variant", "d_intra D", "davis J&F-Mean",
                                                               "thumos_loc mAP"]
    half = T_975_2 * 0.02 / math.sqrt(3)  # frozen: 0.50, 0.52, 0.54 → std 0.02
    assert f"[{0.52 - half:.3f}, {0.52 + half:.3f}]" == "[0.470, 0.570]"
    got = cells(text)
    rnd = "dino_v (RANDOM INIT)"
    assert list(got) == [(rnd, "frozen"), (rnd, "cosettle"), ("mae", "frozen"), ("mae", "advise"), ("mae", "cosettle")]
    # the RANDOM-INIT backbone is never ranked: its 0.700 on davis is not "best", its d_intra column has no
    # mark; the failed 0.99 of advise is absent
    assert got[(rnd, "frozen")] == ["0.300", "0.700", "–"]
    assert got[(rnd, "cosettle")] == ["0.200 (-0.100)", "–", "–"]
    assert got[("mae", "frozen")] == ["–", "0.520 ± 0.020 [0.470, 0.570]", "10.000"]
    assert got[("mae", "advise")] == ["–", "_0.560_ (+0.040) ± 0.010 [0.535, 0.585]", "–"]
    assert got[("mae", "cosettle")] == ["–", "**0.620** (+0.100) ± 0.026 [0.554, 0.686]", "**12.000** (+2.000)"]
    assert "95% CI of the mean, t-distribution" in text and "seeds per cell: 1, 3" in text
    assert "(RANDOM INIT) are test encoders, never ranked" in text
    assert "4 Δ without † test: no per-sample scores" in text


def test_latex_is_booktabs_with_escaped_labels_and_delta_subscripts(results):
    text = render(results, "latex", tasks=["davis", "d_intra"])
    assert "\\toprule" in text and "\\midrule" in text and "\\bottomrule" in text
    assert "backbone & method & variant & davis & d\\_intra \\\\" in text
    assert " &  &  & J\\&F-Mean & D \\\\" in text
    assert ("mae & cosettle & default & \\textbf{0.620}$_{+0.100}$ {\\scriptsize $\\pm$ 0.026 [0.554, 0.686]} & -- \\\\"
            in text)
    assert "dino\\_v (RANDOM INIT) & cosettle & default & -- & 0.200$_{-0.100}$ \\\\" in text
    assert "dino\\_v (RANDOM INIT) & frozen & default & 0.700 & 0.300 \\\\" in text
    assert "footnotesize" not in text  # no † and no interval: no footnote


def test_html_marks_and_digits(results):
    text = render(results, "html", tasks=["davis"], digits=2)
    assert "<td><b>0.62</b><sub>+0.10</sub> ± 0.03 <small>[0.55, 0.69]</small></td>" in text
    assert "<td><u>0.56</u><sub>+0.04</sub> ± 0.01 <small>[0.54, 0.58]</small></td>" in text
    assert "<td>0.70</td>" in text  # RANDOM INIT: never ranked
    assert 'class="dataframe leaderboard"' in text


def test_csv_is_numeric(results):
    df = pd.read_csv(io.StringIO(render(results, "csv")))
    row = df[(df.method == "advise") & (df.backbone == "mae")].iloc[0]
    assert row["n"] == 3 and row["mean"] == pytest.approx(0.56) and row["std"] == pytest.approx(0.01)
    assert row["ci95_low"] == pytest.approx(0.56 - T_975_2 * 0.01 / math.sqrt(3))
    assert row["delta_vs_frozen"] == pytest.approx(0.04) and row["rank"] == 2
    assert len(df) == 8  # the failed record is not a row


def test_ties_share_the_best_mark_and_a_lone_entry_is_not_marked(tmp_path):
    root = tmp_path / "r"
    for method in ("frozen", "a", "b"):
        record(root, method, "mae", "davis", 0, "J&F-Mean", 0.5 if method != "b" else 0.4)
    record(root, "frozen", "mae", "vip", 0, "mIoU", 0.3)
    got = cells(render(root, "markdown"))
    assert got[("mae", "frozen")] == ["**0.500**", "0.300"]
    assert got[("mae", "a")] == ["**0.500** (+0.000)", "–"]
    assert got[("mae", "b")] == ["0.400 (-0.100)", "–"]  # rank 3 after a tie: no second place


def test_table_cli_filters_and_errors(results, capsys):
    assert main(["table", "--results", str(results), "--methods", "frozen,advise", "--backbones", "mae"]) == 0
    got = cells(capsys.readouterr().out)
    assert list(got) == [("mae", "frozen"), ("mae", "advise")]
    assert main(["table", "--results", str(results), "--format", "pdf"]) == 2
    assert "unknown table format 'pdf'" in capsys.readouterr().err
    with pytest.raises(UserError, match="no complete results"):
        render(results, "markdown", tasks=["vip"])


def test_variants_are_separate_rows_never_averaged(tmp_path):
    """Two configurations of one (method, backbone, task, seed) coexist; Δ pairs each with frozen's same setting."""
    root = tmp_path / "r"
    record(root, "frozen", "mae", "davis", 0, "J&F-Mean", 0.50)
    record(root, "frozen", "mae", "davis", 0, "J&F-Mean", 0.40, variant="topk=5", task_config={"topk": 5})
    record(root, "cosettle", "mae", "davis", 0, "J&F-Mean", 0.60)
    record(root, "cosettle", "mae", "davis", 0, "J&F-Mean", 0.70, variant="topk=5", task_config={"topk": 5})
    text = render(root, "markdown")
    got = cells(text)
    assert got[("mae", "frozen")] == ["0.500"]
    assert got[("mae", "frozen", "topk=5")] == ["0.400"]
    assert got[("mae", "cosettle")] == ["_0.600_ (+0.100)"]
    assert got[("mae", "cosettle", "topk=5")] == ["**0.700** (+0.300)"]
    assert "never averaged" in text


def test_version_1_record_written_by_the_old_code_shows(tmp_path, capsys):
    """A schema-1 record (tests/fixtures/results_v1, written by the code before schema 2) is read and shown."""
    import shutil

    shutil.copytree(Path(__file__).parent / "fixtures" / "results_v1", tmp_path / "r")
    assert main(["table", "--results", str(tmp_path / "r")]) == 0
    got = cells(capsys.readouterr().out)
    assert got == {("efficientnet_lite0", "frozen", "v1"): ["0.375"]}
