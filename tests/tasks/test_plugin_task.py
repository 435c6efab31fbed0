"""A task is one file: a plugin outside the package, with its own data set reader and scorer, runs
end to end through the CLI, is scored by ``bench score`` and draws its own figure in ``bench report``,
with no edit of the package."""
from __future__ import annotations

import json
import sys

import pytest

PLUGIN = '''
from pathlib import Path

import pandas as pd
import torch

from benchmark.data.types import LabelledVideo
from benchmark.registry import TASKS
from tasks.base import TaskMeta, TaskOutput
from tasks.video_features import LabelledVideoTask, video_embeddings


def read_mini(root):
    """<root>/<class>/<video>: the first video of each class trains, the others are tested."""
    classes = sorted(p.name for p in Path(root).iterdir() if p.is_dir())
    train, test = [], []
    for label, name in enumerate(classes):
        for i, path in enumerate(sorted((Path(root) / name).iterdir())):
            (train if i == 0 else test).append(LabelledVideo(path, label, path.stem))
    return train, test, classes


@TASKS.register("mytask")
class NearestCentroid(LabelledVideoTask):
    """Nearest class centroid of video embeddings."""

    meta = TaskMeta(name="mytask", dataset="mini", main_metric="accuracy", sample_metric="correct")
    default_config = {"num_frames": 2, "stride": 1, "num_clips": 1, "short_side": 64, "crop": 64}
    reader = read_mini
    score_split = "test"

    def evaluate(self, method, ctx):
        train, test, classes = self.load_split(ctx)
        xtr, xte = video_embeddings(method, train, self.config), video_embeddings(method, test, self.config)
        ytr = torch.tensor([v.label for v in train])
        centroids = torch.stack([xtr[ytr == k].mean(0) for k in range(len(classes))])
        predicted = torch.cdist(xte, centroids).argmin(1).tolist()
        out = ctx.work_dir / "predictions"
        out.mkdir(parents=True, exist_ok=True)
        for v, p in zip(test, predicted):
            (out / f"{v.name}.txt").write_text(str(p))
        correct = [int(p == v.label) for p, v in zip(predicted, test)]
        samples = {"id": self.sample_ids(test, ctx.dataset_path("mini")), "correct": correct, "predicted": predicted}
        return TaskOutput({"accuracy": sum(correct) / len(correct)}, {"predictions": str(out)}, samples=samples)

    @classmethod
    def score_folder(cls, data_root, predictions):
        _, test, _ = read_mini(data_root)
        table = pd.DataFrame([{"Video": v.name, "correct": int((predictions / f"{v.name}.txt").read_text()) == v.label}
                              for v in test])
        return {"accuracy": float(table["correct"].mean())}, table

    @classmethod
    def report_figure(cls, records):
        bars = "".join(f'<rect y="{12 * i}" width="{100 * r.metrics["accuracy"]:.1f}" height="10"/>'
                       for i, r in enumerate(records))
        return (f'<h2 id="mytask-plot">Nearest-centroid accuracy</h2><svg class="mytask" width="100">{bars}</svg>'
                f'<p>{len(records)} mytask records</p>')
'''


@pytest.fixture
def fresh_tasks(monkeypatch):
    """``forget()``: the process's task registry as a new session sees it (built-ins only, no plugin file
    loaded), so that a command that finds the plugin task must have loaded its ``--plugin`` file itself."""
    from pathlib import Path

    from benchmark import registry

    tasks = Path(registry.__file__).resolve().parent.parent / "tasks"

    def forget() -> None:
        monkeypatch.setattr(registry, "TASKS", registry.Registry("task", "i2v_bench.tasks", {}, scan=("tasks", tasks, "TASKS")))
        for name in [m for m in sys.modules if m.startswith("i2v_bench_plugin_mytask_")]:
            monkeypatch.delitem(sys.modules, name)
    return forget


def test_one_file_task_runs_end_to_end_is_scored_and_reported(toy_root, tmp_path, capsys, fresh_tasks):
    """Run, then ``bench score`` and ``bench report``, each as a new session would: the plugin task is
    refused without its ``--plugin`` file, scored and drawn with it."""
    from benchmark.cli import main
    from benchmark.registry import TASKS

    plugin = tmp_path / "mytask.py"
    plugin.write_text(PLUGIN)
    mini = toy_root / "UCF101" / "UCF-101"
    assert main(["run", "--plugin", str(plugin), "--method", "frozen", "--backbone", "efficientnet_lite0",
                 "--tasks", "mytask", "--data-root", str(mini), "--results", str(tmp_path / "r"), "--no-progress"]) == 0
    [path] = [p for p in (tmp_path / "r").rglob("*.json") if "mytask" in str(p)]
    rec = json.loads(path.read_text())
    accuracy = rec["metrics"]["accuracy"]
    assert rec["status"] == "ok" and rec["task"] == "mytask" and 0.0 <= accuracy <= 1.0
    task = TASKS.get("mytask")
    assert task.aggregate({"correct": [1, 0, 1, 1]}) == 0.75  # the base class's mean of the sample column
    capsys.readouterr()
    score = ["score", "mytask", "--data-root", str(mini), "--predictions", str(next((tmp_path / "r").rglob("predictions"))),
             "--out", str(tmp_path / "scores"), "--json"]
    fresh_tasks()
    assert main(score) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot score 'mytask': it is not a known task: choose one of ") and err.count("\n") == 1
    assert "davis" in err and "tradeoff" not in err and err.endswith("(a plugin's task: pass --plugin FILE)\n")
    assert main([*score, "--plugin", str(plugin)]) == 0
    assert json.loads(capsys.readouterr().out)["global"]["accuracy"] == pytest.approx(accuracy)
    assert main([*score[:1], "mytsk", *score[2:], "--plugin", str(plugin)]) == 2
    assert "did you mean 'mytask'?" in capsys.readouterr().err
    fresh_tasks()
    page = tmp_path / "report.html"
    assert main(["report", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "bare.html")]) == 0
    assert "mytask" in (tmp_path / "bare.html").read_text() and "Nearest-centroid" not in (tmp_path / "bare.html").read_text()
    assert main(["report", "--results", str(tmp_path / "r"), "--out", str(page), "--plugin", str(plugin)]) == 0
    text = page.read_text()
    bar = f'<rect y="0" width="{100 * accuracy:.1f}" height="10"/>'
    assert '<section class="task-figure" id="figure-mytask">\n<h2 id="mytask-plot">Nearest-centroid accuracy</h2>' in text
    assert bar in text and "<p>1 mytask records</p>" in text
    assert text.index("Nearest-centroid accuracy") < text.index('<h2 id="tasks">Per-task results</h2>')
