"""`bench report`: one self-contained page, checked as data and as rendered by headless Chromium."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.cli import main
from benchmark.report import bar_figure, build, cost_table
from benchmark.results import SCHEMA_VERSION, iter_results, result_path, write_json_atomic
from benchmark.table import frame, summarise
from tasks.tradeoff import tradeoff_figure, tradeoff_points

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "results" / "test-artifacts"
# (D_intra_norm95, D_inter_norm95) of seed 0; seed s adds +0.01·s to D_intra and -0.01·s to D_inter
POINTS = {("frozen", "mae"): (0.30, 0.60), ("cosettle", "mae"): (0.20, 0.62), ("advise", "mae"): (0.25, 0.55),
          ("frozen", "dino"): (0.35, 0.70), ("cosettle", "dino"): (0.22, 0.69)}
TRAINING = {"trainable_params": 590592, "train_seconds": 3600.0, "peak_memory_bytes": 8 * 2**30}
SEQUENCES = [f"seq{i:02d}" for i in range(12)]
SPREAD = np.linspace(-0.05, 0.05, len(SEQUENCES))  # per-sequence offsets around the record's mean (they sum to 0)


def write(root: Path, method: str, backbone: str, task: str, seed: int, metrics: dict, main_metric: str,
          variant: str = "default", samples: dict | None = None) -> None:
    training = {**TRAINING, "train_seconds": 3600.0 + seed} if method != "frozen" else {"trainable_params": 0}
    write_json_atomic(result_path(root, method, backbone, task, variant, seed), {
        "schema_version": SCHEMA_VERSION, "method": method, "backbone": backbone, "backbone_label": backbone,
        "task": task, "seed": seed, "status": "ok", "main_metric": main_metric, "higher_is_better": True,
        "metrics": metrics, "identity": f"h{seed}", "weights_id": "sha256:abc", "training": training, "variant": variant,
        "details": {"margin_percentile": 95, "gamma": 1.0} if task == "tradeoff" else {},
        "provenance": {"git": {"commit": "0123456789abcdef", "dirty": True}, "device": "cpu (x86_64, 2 threads)",
                       "hostname": "box", "packages": {"torch": "2.14.1", "timm": "1.0.31"},
                       "finished": "2026-01-01T00:00:00", "peak_memory_mb": 900.0 + seed},
        "timings": {"build_s": 1.0, "fit_s": 0.0, "eval_s": 10.0 + seed},
        "samples": samples or {}, "sample_unit": "sequence",
    })


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report") / "res"
    for (method, backbone), (x, y) in POINTS.items():
        for s in range(3):
            write(root, method, backbone, "tradeoff", s,
                  {"D_intra_norm95": x + 0.01 * s, "D_inter_norm95": y - 0.01 * s, "D_margin": y - x - 0.02 * s}, "D_margin")
            jf = 0.5 + y / 10 + 0.01 * s
            write(root, method, backbone, "davis", s, {"J&F-Mean": jf}, "J&F-Mean",
                  samples={"id": SEQUENCES, "J&F-Mean": list(jf + SPREAD)})
    write_json_atomic(result_path(root, "advise", "dino", "davis", "default", 0), {
        "schema_version": SCHEMA_VERSION, "method": "advise", "backbone": "dino", "task": "davis", "seed": 0,
        "status": "failed", "error": "RuntimeError: boom <b>", "traceback": "Traceback (most recent call last):\nboom <b>"})
    return root


@pytest.fixture(scope="module")
def page(results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page") / "report.html"
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    return out


def test_page_is_self_contained(page):
    text = page.read_text()
    assert not re.search(r'(src|href)="(?!data:)', text), "every resource must be embedded"
    assert "<script" not in text and "<link" not in text
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)">', text)
    assert [alt for alt, _ in images] == [
        "Consistency / separability trade-off",
        "davis: J&amp;F-Mean", "tradeoff: D_margin"]
    for _, data in images:
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        assert img.format == "PNG" and img.width > 300 and img.height > 200
    assert "30 complete results, 1 failed" in text
    assert "RuntimeError: boom &lt;b&gt;" in text and "boom <b>" not in text  # escaped, never live HTML


def test_tradeoff_points_and_arrows(results):
    points = tradeoff_points(list(iter_results(results))).set_index(["backbone", "method"])
    for (method, backbone), (x, y) in POINTS.items():  # seeds 0, 1, 2 → mean shifts by +0.01 / -0.01
        assert points.loc[(backbone, method), "x"] == pytest.approx(x + 0.01)
        assert points.loc[(backbone, method), "y"] == pytest.approx(y - 0.01)
        assert points.loc[(backbone, method), "x_std"] == pytest.approx(0.01)
    fig = tradeoff_figure(points.reset_index())
    arrows = [t for t in fig.axes[0].texts if getattr(t, "arrow_patch", None) is not None]
    # one arrow per adapted version of a frozen backbone, starting at the frozen point
    ends = sorted((round(a.xyann[0], 3), round(a.xy[0], 3)) for a in arrows)
    assert ends == [(0.31, 0.21), (0.31, 0.26), (0.36, 0.23)]


def test_cost_columns(results):
    cost = cost_table(list(iter_results(results))).set_index(["backbone", "method"])
    row = cost.loc[("mae", "cosettle")]
    assert row["seeds"] == 3 and row["trainable params"] == 590592
    assert row["train time (s)"] == pytest.approx(3601.0)  # mean of 3600, 3601, 3602
    assert row["train peak memory (MiB)"] == pytest.approx(8192.0)
    assert row["eval time (s)"] == pytest.approx(22.0)  # two tasks per seed: (10 + s) · 2, averaged
    assert row["eval peak memory (MiB)"] == pytest.approx(901.0)
    assert cost.loc[("dino", "frozen"), "trainable params"] == 0


PROBE = """<script>window.addEventListener('load', () => {
  const images = [...document.images].map(i => (i.complete ? i.naturalWidth : -1));
  const rows = [...document.querySelectorAll('table.leaderboard tbody tr')].map(
      tr => [...tr.children].map(c => c.textContent.trim()));
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({images, rows, title: document.title});
  document.body.appendChild(out);
});</script>"""


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="headless check needs Debian's chromium: apt-get update && apt-get install -y chromium")
def test_page_renders_in_headless_chromium(page, tmp_path):
    """Chromium loads the page, decodes every image and shows the leaderboard rows; the screenshot is kept."""
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    shot = tmp_path / "report.png"
    out = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1280,2400", "--virtual-time-budget=10000", f"--screenshot={shot}", "--dump-dom",
         probed.as_uri()],
        capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="probe">(.*?)</pre>', out.stdout, re.S)
    assert match, f"chromium did not run the page: {out.stderr[-2000:]}"
    import html

    probe = json.loads(html.unescape(match.group(1)))
    assert probe["title"] == "i2v-bench report"
    assert len(probe["images"]) == 3 and all(w > 0 for w in probe["images"])
    assert [r[:3] if len(r) == 5 else r[:2] for r in probe["rows"]] == [
        ["dino", "frozen", "default"], ["cosettle", "default"], ["mae", "frozen", "default"], ["advise", "default"],
        ["cosettle", "default"]]
    assert probe["rows"][4][2].startswith("0.572+0.002 ± 0.010")  # mae cosettle davis: mean, Δ, ± std
    assert Image.open(shot).size == (1280, 2400)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report.png")


def test_report_without_results_is_a_user_error(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path / "none"), "--out", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_variants_are_separate_points_and_bars(results, tmp_path):
    """A second variant of cosettle on mae is its own point, labelled, never averaged with the default one."""
    root = tmp_path / "res"
    shutil.copytree(results, root)
    for s in range(3):
        write(root, "cosettle", "mae", "tradeoff", s, {"D_intra_norm95": 0.1, "D_inter_norm95": 0.9, "D_margin": 0.8},
              "D_margin", variant="epochs=1")
    points = tradeoff_points(list(iter_results(root))).set_index(["backbone", "method"])
    assert points.loc[("mae", "cosettle [default]"), "x"] == pytest.approx(0.21)
    assert points.loc[("mae", "cosettle [epochs=1]"), "x"] == pytest.approx(0.1)
    assert points.loc[("mae", "frozen"), "x"] == pytest.approx(0.31)
    out = tmp_path / "r.html"
    assert main(["report", "--results", str(root), "--out", str(out)]) == 0
    assert "epochs=1" in out.read_text()


def test_each_task_says_whether_each_gain_is_significant(page):
    """davis has per-sequence scores (3 seeds: hierarchical bootstrap), tradeoff has none."""
    text = page.read_text()
    sentences = re.findall(r'<p class="significance">(.*?)</p>', text)
    assert len(sentences) == 2
    davis = next(t for t in sentences if t.startswith("On davis (J&amp;F-Mean, vs frozen): "))
    assert "cosettle on mae shows a gain, not significant (Δ = +0.002, CI [" in davis
    assert "Holm-adjusted p = " in davis and "advise on mae shows a loss" in davis
    tradeoff = next(t for t in sentences if t.startswith("On tradeoff"))
    assert "cosettle on dino (Δ = " in tradeoff and "cannot be tested (no per-sample scores)" in tradeoff


def _constructed(root: Path) -> None:
    """One seed: advise better than frozen by 0.1 on every sequence, finetune equal to it; a NaN record; a
    RANDOM-INIT backbone best."""
    for method, shift in (("frozen", 0.0), ("advise", 0.1), ("finetune", 0.0)):
        scores = 0.5 + SPREAD + shift
        write(root, method, "mae", "davis", 0, {"J&F-Mean": float(scores.mean())}, "J&F-Mean",
              samples={"id": SEQUENCES, "J&F-Mean": list(scores)})
    write(root, "cosettle", "mae", "davis", 0, {"J&F-Mean": float("nan")}, "J&F-Mean")
    write(root, "cosettle", "mae", "tradeoff", 0, {"D_intra_norm95": float("nan"), "D_inter_norm95": 0.5}, "D_margin")
    write(root, "frozen", "mae", "tradeoff", 0, {"D_intra_norm95": 0.3, "D_inter_norm95": 0.5, "D_margin": 0.2}, "D_margin")
    write_json_atomic(result_path(root, "frozen", "rnd", "davis", "default", 0), {
        "schema_version": SCHEMA_VERSION, "method": "frozen", "backbone": "rnd", "backbone_label": "rnd (RANDOM INIT)",
        "task": "davis", "seed": 0, "status": "ok", "main_metric": "J&F-Mean", "metrics": {"J&F-Mean": 0.99}})


def test_nan_record_one_seed_and_random_init(tmp_path):
    """A NaN metric is no bar and no point (and no crash); one seed draws no error-bar caps; the RANDOM-INIT
    backbone's 0.99 is not bold; the significant gain is said so."""
    _constructed(tmp_path)
    text = build(tmp_path)
    assert "advise on mae shows a significant gain (Δ = +0.100, CI [+0.100, +0.100], Holm-adjusted p = " in text
    assert "finetune on mae shows no change, not significant (Δ = +0.000, CI [+0.000, +0.000], Holm-adjusted p = 1)" in text
    assert "<b>0.99" not in text and "<b>0.600</b>" in text
    summary = summarise(frame(iter_results(tmp_path)))
    fig = bar_figure(summary, "davis", "J&F-Mean")
    caps = [line for ax in fig.axes for line in ax.lines if line.get_marker() == "_"]
    assert caps == []  # one seed: no ± spread to cap
    assert len(tradeoff_points(list(iter_results(tmp_path)))) == 1  # the NaN point is left out


def test_titles_fit_and_legends_sit_beside_the_bars(results):
    records = list(iter_results(results))
    figures = [tradeoff_figure(tradeoff_points(records)), bar_figure(summarise(frame(records)), "davis", "J&F-Mean")]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for fig in figures:
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        for ax in fig.axes:  # a title no wider than its own axes (the old trade-off title overran them)
            title, box = ax.title.get_window_extent(renderer), ax.get_window_extent(renderer)
            assert title.x0 >= box.x0 and title.x1 <= box.x1, ax.get_title()
            legend = ax.get_legend()
            if legend is not None:  # entirely right of the axes' plotting area
                assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1


def test_mean_interval_is_clipped_at_zero(tmp_path):
    """0.00, 0.00, 0.09: the t-interval of the mean reaches below 0; accuracy cannot, so it is clipped and said."""
    for seed, v in enumerate((0.0, 0.0, 0.09)):
        write(tmp_path, "frozen", "mae", "ssv2_cls", seed, {"top1": v}, "top1")
    summary = summarise(frame(iter_results(tmp_path)))
    assert summary.loc[0, "ci_low"] == 0.0 and summary.loc[0, "ci_clipped"]
    page = build(tmp_path)
    assert "clipped at 0 where every value of the metric is ≥ 0 (ssv2_cls top1)" in page
    assert "task-figure" not in page and 'id="tradeoff"' not in page  # no tradeoff records: no empty plot section
