"""One bad file never breaks a results folder, and no run writes a score a table cannot read.

A folder holding a record with a NaN main metric and a record missing ``main_metric`` (what a
one-frame DAVIS sequence and a hand-edited file left before) must still list, tabulate and report;
``bench run`` recomputes both and keeps the bad files beside, renamed. A task whose score is not
finite ends the run with one line and writes nothing. A plugin task reading a word list keeps each
run at about a second.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from benchmark.cli import main

PLUGIN = '''
import math
from benchmark.registry import TASKS
from tasks.base import Task, TaskMeta, TaskOutput


@TASKS.register("poison_probe")
class Probe(Task):
    """Mean word length of clips/labels.txt; ``blank: true`` scores NaN, as a task with nothing to score would."""
    meta = TaskMeta(name="poison_probe", dataset="clips", main_metric="score", sample_unit="query")
    default_config = {"blank": False}

    def evaluate(self, method, ctx):
        words = (ctx.dataset_path("clips") / "labels.txt").read_text().split()
        score = math.nan if self.config["blank"] else sum(map(len, words)) / len(words)
        return TaskOutput(metrics={"score": score}, samples={"id": words, "score": [float(len(w)) for w in words]})
'''


PLUGIN_FILE = "poison_probe.py"  # the plugin fixture (tests/conftest.py) writes PLUGIN there


@pytest.fixture
def root(tmp_path, monkeypatch, plugin) -> Path:
    monkeypatch.setenv("I2V_BENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data" / "clips").mkdir(parents=True)
    (tmp_path / "data" / "clips" / "labels.txt").write_text("jump run swim\n")
    (tmp_path / "poison_probe.py").symlink_to(plugin)
    return tmp_path


def run(root: Path, *extra: str) -> int:
    return main(["run", "--method", "frozen", "--backbone", "vit_tiny_random", "--plugin", str(root / "poison_probe.py"),
                 "--tasks", "poison_probe", "--data-root", str(root / "data"), "--results", str(root / "res"),
                 "--no-progress", "--no-cache", "--device", "cpu", *extra])


def seed_file(root: Path, seed: int) -> Path:
    (path,) = (root / "res").glob(f"frozen/vit_tiny_random/poison_probe/*/seed{seed}.json")
    return path


def test_nan_and_missing_key_records_leave_run_table_report_and_list_working(root, capfd):
    assert run(root, "--seeds", "0,1,2") == 0
    good = json.loads(seed_file(root, 0).read_text())
    nan, missing = seed_file(root, 1), seed_file(root, 2)
    nan.write_text(json.dumps({**good, "seed": 1, "metrics": {"score": math.nan}}))  # json writes NaN, as before
    missing.write_text(json.dumps({k: v for k, v in good.items() if k != "main_metric"} | {"seed": 2}))
    capfd.readouterr()

    assert main(["list", "results", "--results", str(root / "res")]) == 0
    out = capfd.readouterr()
    assert out.out.count("poison_probe") == 1 and "score=" in out.out  # the good seed only
    assert f"result {nan} cannot be read (main metric 'score' is nan, not a number" in out.err
    assert f"result {missing} cannot be read (main_metric is missing)" in out.err
    assert out.err.count("\n") == 2  # each bad file said once

    assert main(["table", "--results", str(root / "res")]) == 0
    assert "vit_tiny_random" in capfd.readouterr().out
    assert main(["report", "--results", str(root / "res"), "--out", str(root / "report.html")]) == 0
    assert (root / "report.html").stat().st_size > 0
    assert [p.name for p in nan.parent.glob("*.invalid*.json")] == []  # reading never renames

    capfd.readouterr()
    assert run(root, "--seeds", "0,1,2") == 0
    err = capfd.readouterr().err
    assert "poison_probe (seed 0): already present" in err
    for path, seed in ((nan, 1), (missing, 2)):
        again = json.loads(path.read_text())
        assert again["metrics"] == good["metrics"] and again["seed"] == seed  # recomputed
        kept = path.with_name(f"seed{seed}.invalid.json")
        assert kept.is_file() and err.count(str(path)) == 1 and f"kept as {kept.name}" in err  # renamed, said once
    assert json.loads(nan.with_name("seed2.invalid.json").read_text()).get("main_metric") is None
    assert main(["list", "results", "--results", str(root / "res")]) == 0
    assert capfd.readouterr().out.count("poison_probe") == 3


def test_a_task_that_scores_nan_writes_nothing_and_says_why_in_one_line(root, capfd):
    assert run(root, "--set", "poison_probe.blank=true") == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "gave no valid score (main metric 'score' is nan, not a number)" in err, err
    assert not list((root / "res").rglob("seed*.json"))


def test_topk_above_the_candidate_tokens_is_refused_in_one_line(toy_root, tmp_path, capfd, monkeypatch):
    """topk=100000 used to give J&F 0.0 silently (every token voted); now the run stops and says the bound."""
    monkeypatch.setenv("I2V_BENCH_CACHE", str(tmp_path / "cache"))
    argv = ["run", "--method", "frozen", "--backbone", "vit_tiny_random", "--tasks", "davis", "--data-root", str(toy_root),
            "--results", str(tmp_path / "res"), "--no-progress", "--no-cache", "--device", "cpu",
            "--set", "davis.propagation.topk=100000", "--set", "davis.input_size=[fixed, 64, 64]",
            "--set", "davis.sequences=[toy-00]"]
    assert main(argv) == 2
    err = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: propagation topk=100000 exceeds the "), err
    bound = int(err[0].split("exceeds the ")[1].split()[0])
    assert f"at most {bound}" in err[0] and 0 < bound < 100000
    assert not list((tmp_path / "res").rglob("seed*.json"))


def test_propagation_accepts_topk_up_to_the_candidate_pool_and_no_further():
    from benchmark.errors import UserError
    from tasks.propagation import PRESETS, check_topk

    cfg = PRESETS["dino"]["davis"][0]  # frame 0 plus up to 7 previous frames
    tokens, frames = 12, 10
    pool = tokens * 8
    check_topk(dataclasses.replace(cfg, topk=pool), frames, tokens)
    with pytest.raises(UserError, match=f"at most {pool} "):
        check_topk(dataclasses.replace(cfg, topk=pool + 1), frames, tokens)
