"""DAVIS, VIP and JHMDB end to end on the toy suite: complete results, pretrained beats random, and
the stand-alone scorer agrees with the tasks (and never reuses stale CSVs)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.backbones import build_backbone
from benchmark.errors import UserError
from methods.frozen import Frozen
from tasks.scoring import score
from tests.tasks.toy_setup import check_samples, frozen_run, toy_ctx, toy_task

TASKS = ("davis", "vip", "jhmdb")
MAIN = {"davis": "J&F-Mean", "vip": "mIoU", "jhmdb": "PCK@0.1"}
# the paired CI's lower end of pretrained − random must clear these; measured on toy small seed 0 (12 samples
# each, 95 % CIs): DAVIS +0.19 [+0.11, +0.26], VIP +0.22 [+0.20, +0.25], JHMDB +0.36 [+0.30, +0.42]
MARGIN = {"davis": 0.05, "vip": 0.05, "jhmdb": 0.1}


@pytest.fixture(scope="module")
def runs(toy_root, tmp_path_factory):
    """Both backbones on the three tasks; the pretrained run (shared with tests/tasks/test_samples.py) also
    saves its predictions."""
    out = {}
    work = tmp_path_factory.mktemp("efficientnet_lite0")
    for name in TASKS:
        out["efficientnet_lite0", name] = frozen_run(toy_root, name, work)[1]
    method, work = Frozen(build_backbone("vit_tiny_random"), {"batch_size": 16}), tmp_path_factory.mktemp("random")
    for name in TASKS:
        out["vit_tiny_random", name] = toy_task(name).evaluate(method, toy_ctx(toy_root, work))
    return out


@pytest.mark.parametrize("name", TASKS)
def test_pretrained_beats_random_on_the_paired_ci(runs, name):
    """The ImageNet-trained encoder over the random ViT-Ti, paired over the 12 sequences or videos: the
    95 % CI of the per-sample Δ clears a margin, and the exact sign-flip test is significant."""
    from benchmark.stats import paired

    good, bad = runs["efficientnet_lite0", name], runs["vit_tiny_random", name]
    key, column = MAIN[name], toy_task(name).meta.sample_metric
    assert 0.0 <= bad.metrics[key] <= good.metrics[key] <= 1.0
    assert good.samples["id"] == bad.samples["id"] and len(good.samples["id"]) >= 12
    result = paired(bad.samples[column], good.samples[column], seed=0)
    assert result.ci_low >= MARGIN[name] and result.p_value < 0.01, result
    assert good.details["preset"] == "cosettle" and good.details["propagation"]["topk"] == (10 if name == "vip" else 7)


@pytest.mark.parametrize("name", TASKS)
def test_per_sample_scores_rebuild_the_main_metric(runs, name):
    out = runs["efficientnet_lite0", name]
    n = out.details["sequences"] if name == "davis" else out.details["videos"]
    check_samples(toy_task(name), out, n)
    s = out.samples
    if name == "davis":  # J&F-Mean averages objects: the plain mean of sequences differs unless all have one
        assert s["J&F"] == pytest.approx([(j + f) / 2 for j, f in zip(s["J"], s["F"])])
        assert sum(s["objects"]) == out.details["objects"] > len(s["id"])
    if name == "vip":
        assert all(len(tp) == len(u) == 20 for tp, u in zip(s["tp"], s["union"]))
    if name == "jhmdb":
        assert all("/" in i for i in s["id"]) and sum(s["frames"]) > 0
    # a resample of the rows is scored as the task scores a smaller split: one row alone is its own score
    task = toy_task(name)
    one = {k: v[:1] for k, v in s.items()}
    assert task.aggregate(one) == pytest.approx(s[task.meta.sample_metric][0])


def test_davis_result_is_complete(runs, toy_root):
    out = runs["efficientnet_lite0", "davis"]
    assert set(out.metrics) == {"J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"}
    assert out.metrics["J&F-Mean"] == pytest.approx((out.metrics["J-Mean"] + out.metrics["F-Mean"]) / 2)
    table = np.genfromtxt(out.artifacts["per_sequence"], delimiter=",", names=True, dtype=None, encoding=None)
    assert len(table) == out.details["objects"] >= out.details["sequences"]
    pngs = sorted(Path(out.artifacts["predictions"]).rglob("*.png"))
    assert len(pngs) == sum(len(list(d.iterdir())) for d in (toy_root / "DAVIS" / "JPEGImages" / "480p").iterdir())
    assert Image.open(pngs[0]).mode == "P"


def test_davis_scorer_matches_task_and_ignores_stale_csv(runs, toy_root, capsys):
    out = runs["efficientnet_lite0", "davis"]
    preds = out.artifacts["predictions"]
    stale = Path(preds) / "global_results-val.csv"
    stale.write_text("J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n9,9,9,9,9,9,9\n")
    assert score("davis", toy_root, preds, as_json=True) == 0
    printed = json.loads(capsys.readouterr().out)["global"]
    assert printed == pytest.approx(out.metrics)
    assert float(stale.read_text().splitlines()[1].split(",")[0]) == pytest.approx(out.metrics["J&F-Mean"])
    assert score("davis", toy_root, preds, as_json=False) == 0
    assert "Global results for val" in capsys.readouterr().out


def test_davis_scorer_perfect_on_ground_truth(toy_root, tmp_path, capsys):
    shutil.copytree(toy_root / "DAVIS" / "Annotations" / "480p", tmp_path / "gt")
    score("davis", toy_root, tmp_path / "gt", as_json=True)
    assert json.loads(capsys.readouterr().out)["global"]["J&F-Mean"] == 1.0
    missing = min((tmp_path / "gt").glob("*/00003.png"))
    missing.unlink()
    with pytest.raises(UserError, match=re.escape(str(missing))):
        score("davis", toy_root, tmp_path / "gt", as_json=True)


@pytest.mark.parametrize("name", ["vip", "jhmdb"])
def test_vip_jhmdb_scorers_match_tasks(runs, toy_root, capsys, name):
    out = runs["efficientnet_lite0", name]
    assert score(name, toy_root, out.artifacts["predictions"], as_json=True) == 0
    printed = json.loads(capsys.readouterr().out)["global"]
    assert printed[MAIN[name]] == pytest.approx(out.metrics[MAIN[name]])


@pytest.mark.parametrize("name", TASKS)
def test_a_warm_feature_cache_never_decodes_a_frame(toy_root, tmp_path, monkeypatch, name):
    """The frames of DAVIS, VIP and JHMDB are keyed on their files (benchmark.data.frames.Video): a second
    evaluation through a warm cache reads tokens and the annotations, never a frame image, and scores the same."""
    from PIL import ImageFile

    from benchmark.cache import install

    def run():
        method = Frozen(build_backbone("efficientnet_lite0"), {"batch_size": 16})
        install(method, tmp_path / "features")
        return toy_task(name).evaluate(method, toy_ctx(toy_root, tmp_path / "work"))

    cold = run()
    decode = ImageFile.ImageFile.load

    def annotations_only(image):  # reading a header (the frame size) is fine; decoding pixels is not
        if re.search(r"/(JPEGImages|Images|Rename_Images)/", str(image.filename)):
            raise AssertionError(f"a warm cache decoded {image.filename}")
        return decode(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", annotations_only)
    assert run().metrics == cold.metrics
