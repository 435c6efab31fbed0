"""Published tables: the shipped files validate and cite every row; bad files are refused in one line;
ours sit beside the papers' values with Δ and a tolerance flag, blank where nothing is published."""
from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmark.errors import UserError
from benchmark.published import DEFAULT_TOL, Published, annotate, comparison, load, read_file

GOOD_ROW = {"method": "frozen", "backbone": "mae", "source_backbone": "MAE ViT-B/16", "task": "davis",
            "metric": "J&F-Mean", "value": 52.4, "row": "MAE"}


def write_table(folder: Path, name: str, rows: list[dict], **top) -> Path:
    doc = {"source": {"document": "a README", "table": "Checkpoints", "url": "https://example.org/readme"},
           "scale": "percent", "preset": "cosettle", "rows": rows, **top}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def published(method: str, backbone: str, preset: str = "cosettle", source: str = "cosettle") -> Published:
    """The shipped row for (method, backbone, davis, J&F-Mean) under ``preset``."""
    return next(p for p in load() if p.key == (method, backbone, "davis", "J&F-Mean") and p.preset == preset
                and p.source == source)


def test_shipped_tables_cite_every_row_and_name_metrics_our_tasks_report():
    from benchmark.registry import TASKS
    from tasks.metrics.davis import GLOBAL_COLUMNS

    rows = load()
    assert {p.source for p in rows} >= {"cosettle", "crw", "dino"}
    for p in rows:
        assert "row '" in p.cite and 0.0 <= p.value <= 1.0
        reported = GLOBAL_COLUMNS if p.task == "davis" else [TASKS.get(p.task).meta.main_metric]
        assert p.metric in reported, p


def test_the_values_the_issue_quotes_from_the_cosettle_readme_are_the_ones_stored():
    # issue #12 quotes: "MoCo v3 62.6 → 62.9 ... J&F on 30 DAVIS sequences" (percent)
    assert published("frozen", "mocov3").value == pytest.approx(0.626)
    assert published("cosettle", "mocov3").value == pytest.approx(0.629)


@pytest.mark.parametrize("bad, words", [
    ({k: v for k, v in GOOD_ROW.items() if k != "row"}, ["rows.0.row", "missing", "cites"]),
    ({**GOOD_ROW, "valeu": 1.0}, ["unknown field", "valeu"]),
    ({**GOOD_ROW, "method": "co-settle"}, ["unknown method", "'co-settle'", "did you mean 'cosettle'"]),
    ({**GOOD_ROW, "value": 152.4}, ["outside [0, 100]"]),
    ({**GOOD_ROW, "task": "jhmdb", "metric": "PCK@0.1", "options": {"pkc": "crw"}}, ["option 'pkc'", "did you mean 'pck'"]),
])
def test_a_bad_row_is_refused_in_one_line_naming_the_file(tmp_path, bad, words):
    path = write_table(tmp_path, "paper", [bad])
    with pytest.raises(UserError) as e:
        read_file(path)
    message = str(e.value)
    assert str(path) in message and "\n" not in message
    for w in words:
        assert w in message


def test_a_cell_published_twice_in_one_protocol_is_refused(tmp_path):
    write_table(tmp_path, "a", [GOOD_ROW])
    write_table(tmp_path, "b", [{**GOOD_ROW, "value": 53.0}])
    with pytest.raises(UserError, match="both give frozen x mae x davis x J&F-Mean"):
        load(folder=tmp_path)
    assert [p.value for p in load(["a"], folder=tmp_path)] == [pytest.approx(0.524)]
    with pytest.raises(UserError, match="did you mean 'a'"):
        load(["aa"], folder=tmp_path)


def toy_summary() -> pd.DataFrame:
    """Leaderboard cells shaped as :func:`benchmark.table.summarise` gives them (method, backbone, variant,
    task, metric, n, mean), built around the shipped values: MoCo v3 frozen 0.02 above its published J&F
    (outside the tolerance), Co-Settle 0.005 above (inside), DINO under the cosettle preset and under the
    dino preset, and a backbone nobody publishes."""
    rows = []
    for method, backbone, variant, offset in [
            ("frozen", "mocov3", "default", 0.02), ("cosettle", "mocov3", "default", 0.005), ("frozen", "dino", "default", 0.0),
            ("frozen", "dino", "preset=dino", 0.0), ("frozen", "efficientnet_lite0", "default", None)]:
        preset = "dino" if variant == "preset=dino" else "cosettle"
        mean = 0.5 if offset is None else published(method, backbone, preset, preset).value + offset
        rows.append({"backbone": backbone, "method": method, "variant": variant, "task": "davis", "metric": "J&F-Mean",
                     "n": 3, "mean": mean, "std": 0.01})
    return pd.DataFrame(rows)


def test_ours_sit_beside_the_published_value_with_delta_and_flag_blank_where_nothing_is_published():
    s = annotate(toy_summary(), load())
    at = {(r.method, r.backbone, r.variant): r for r in s.itertuples()}
    moco = at["frozen", "mocov3", "default"]
    assert moco.published == pytest.approx(published("frozen", "mocov3").value)
    assert moco.published_delta == pytest.approx(0.02) and moco.published_flag
    assert "Co-Settle README.md" in moco.published_source and "row 'MoCo v3'" in moco.published_source
    settled = at["cosettle", "mocov3", "default"]
    assert settled.published_delta == pytest.approx(0.005) and not settled.published_flag
    # the same cell under two protocols meets each paper's own number, never the other's
    assert at["frozen", "dino", "default"].published == pytest.approx(published("frozen", "dino").value)
    assert at["frozen", "dino", "preset=dino"].published == pytest.approx(published("frozen", "dino", "dino", "dino").value)
    assert "DINO paper" in at["frozen", "dino", "preset=dino"].published_source
    lite = at["frozen", "efficientnet_lite0", "default"]
    assert math.isnan(lite.published) and math.isnan(lite.published_delta) and not lite.published_flag
    assert lite.published_source == ""
    # a looser tolerance clears the flag
    assert not annotate(toy_summary(), load(), tol=0.05)["published_flag"].any()


def test_the_comparison_table_shows_the_published_column_blank_cells_and_the_sources():
    s = annotate(toy_summary(), load())
    text = comparison(s, "markdown", 3, DEFAULT_TOL)
    lines = {tuple(c.strip() for c in line.strip("|").split("|")[:3]): line
             for line in text.splitlines() if line.startswith("| ")}
    moco = [c.strip() for c in lines["mocov3", "frozen", "default"].strip("|").split("|")]
    assert moco[5:] == [f"{published('frozen', 'mocov3').value + 0.02:.3f}", f"{published('frozen', 'mocov3').value:.3f}",
                        "+0.020", "!", moco[-1]] and moco[-1].startswith("[")
    lite = [c.strip() for c in lines["efficientnet_lite0", "frozen", "default"].strip("|").split("|")]
    assert lite[5] == "0.500" and lite[6:] == ["", "", "", ""]
    assert "[1] Co-Settle README.md" in text and "! marks |ours - published| > 0.01" in text


def test_two_published_values_for_one_cell_are_refused_not_chosen_between():
    p = published("frozen", "mocov3")
    twin = Published(*(getattr(p, f) for f in ("method", "backbone", "task", "metric")), 0.5, p.preset, "other",
                     "another table", p.source_backbone)
    with pytest.raises(UserError, match="2 published values match frozen x mocov3 x davis J&F-Mean"):
        annotate(toy_summary(), [p, twin])
    with pytest.raises(UserError, match="--published-tol"):
        annotate(toy_summary(), [p], tol=-0.1)


def test_bench_table_published_on_result_records(tmp_path, capsys):
    from benchmark.cli import main
    from tests.test_table import record  # the leaderboard tests' own record writer, whatever the record layout

    moco = published("frozen", "mocov3").value
    for seed, jitter in enumerate((-0.001, 0.001)):
        record(tmp_path, "frozen", "mocov3", "davis", seed, "J&F-Mean", moco + 0.02 + jitter)
        record(tmp_path, "frozen", "efficientnet_lite0", "davis", seed, "J&F-Mean", 0.5 + jitter)
    assert main(["table", "--results", str(tmp_path), "--published", "cosettle,dino"]) == 0
    out = capsys.readouterr().out
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ")]
    header = next(r for r in rows if "published" in r)
    moco_row = next(r for r in rows if r[:2] == ["mocov3", "frozen"] and len(r) == len(header))
    lite_row = next(r for r in rows if r[:2] == ["efficientnet_lite0", "frozen"] and len(r) == len(header))
    cell = dict(zip(header, moco_row))
    assert cell["published"] == f"{moco:.3f}" and cell["ours - published"] == "+0.020" and cell["off by >0.01"] == "!"
    assert dict(zip(header, lite_row))["published"] == ""
    assert main(["table", "--results", str(tmp_path), "--published", "cosetle"]) == 2
    assert "did you mean 'cosettle'" in capsys.readouterr().err


def test_a_preset_column_decides_the_protocol_over_the_variant_name():
    """A ``--tag``-named variant says nothing about its preset; a frame that carries the preset is exact."""
    frame = pd.DataFrame([{"backbone": "dino", "method": "frozen", "variant": "mytag", "task": "davis",
                           "metric": "J&F-Mean", "mean": 0.6, "preset": preset} for preset in ("dino", "crw", "")])
    out = annotate(frame, load())
    assert out["published"].iloc[0] == pytest.approx(published("frozen", "dino", "dino", "dino").value)
    assert math.isnan(out["published"].iloc[1])  # nothing published under CRW's protocol for DINO
    assert out["published"].iloc[2] == pytest.approx(published("frozen", "dino").value)  # no preset: the task's default


def test_jhmdb_rows_name_their_pck_and_only_a_cell_scored_the_same_way_meets_them():
    """The published PCK@0.1 is CRW's ``eval_pck.py`` (lost joints left out): a ``pck: fixed`` result (lost
    joints count as misses) must never be compared with it, whether the PCK is read from a column, the
    variant name, or the task's default (``configs/tasks/jhmdb.yaml``)."""
    jhmdb = [p for p in load() if p.task == "jhmdb"]
    assert jhmdb and all(dict(p.options) == {"pck": "crw"} for p in jhmdb)
    value = next(p.value for p in jhmdb if (p.method, p.backbone) == ("frozen", "mocov3"))
    cells = [("default", "crw"), ("default", "fixed"), ("pck=crw", ""), ("default", ""), ("mytag", "")]
    frame = pd.DataFrame([{"backbone": "mocov3", "method": "frozen", "variant": variant, "task": "jhmdb",
                           "metric": "PCK@0.1", "mean": 0.4, "preset": "cosettle", "pck": pck} for variant, pck in cells])
    got = annotate(frame, load())["published"].tolist()
    assert got[0] == pytest.approx(value) and got[2] == pytest.approx(value)
    assert all(math.isnan(v) for v in (got[1], got[3], got[4]))  # fixed, and the default (fixed) twice


def test_bench_table_published_reads_the_pck_a_jhmdb_record_ran_with(tmp_path, capsys):
    from benchmark.cli import main
    from tests.test_table import record

    for variant, pck in (("a", "crw"), ("b", "fixed")):
        record(tmp_path, "frozen", "mocov3", "jhmdb", 0, "PCK@0.1", 0.4, variant=variant,
               task_config={"preset": "cosettle", "pck": pck})
    assert main(["table", "--results", str(tmp_path), "--published", "cosettle", "--format", "csv"]) == 0
    by = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("variant")
    value = next(p.value for p in load(["cosettle"]) if p.key == ("frozen", "mocov3", "jhmdb", "PCK@0.1"))
    assert by.loc["a", "published"] == pytest.approx(value) and math.isnan(by.loc["b", "published"])


def test_cosettle_cells_meet_the_table_only_with_its_input_statistics():
    """The authors feed every encoder ImageNet's mean/std (``backbone_options: {input_norm: imagenet}``): a CLIP
    cell run with CLIP's own statistics saw other inputs and gets no published value; one run with
    ``input_norm: imagenet`` does; for MAE, whose own statistics are ImageNet's, both do (older records: own)."""
    rows = load(["cosettle"])
    assert all(dict(p.backbone_options) == {"input_norm": "imagenet"} for p in rows)
    cells = [("clip", "own"), ("clip", "imagenet"), ("mae", "own"), ("mae", None)]
    frame = pd.DataFrame([{"backbone": b, "method": "frozen", "variant": "default", "task": "davis", "metric": "J&F-Mean",
                           "mean": 0.5, "preset": "cosettle", "input_norm": norm} for b, norm in cells])
    got = annotate(frame, rows)["published"].tolist()
    assert math.isnan(got[0]) and not any(math.isnan(v) for v in got[1:])
