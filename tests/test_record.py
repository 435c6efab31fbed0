"""Result identity end to end: what changes a result's identity recomputes it, the old record stays beside.

A plugin task (one file outside the package) reads an annotation file from its data folder and returns
per-sample scores; the backbone is DINO's layout loaded from a tiny synthetic checkpoint, so a whole
run takes a second and the weights file's bytes can be changed at the same path.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import timm
import torch

from benchmark.cli import main
from benchmark.record import ResultRecord
from benchmark.results import iter_results, read_record

PLUGIN = '''
from benchmark.registry import TASKS
from tasks.base import Task, TaskMeta, TaskOutput


@TASKS.register("rec_probe")
class Probe(Task):
    """Scores each word of clips/labels.txt by its length times ``scale`` (a stand-in for a real metric)."""
    meta = TaskMeta(name="rec_probe", dataset="clips", main_metric="score", sample_unit="query",
                    sample_metric="length")
    default_config = {"scale": 1.0, "smooth": {"k": 1}}

    def evaluate(self, method, ctx):
        words = (ctx.dataset_path("clips") / "labels.txt").read_text().split()
        lengths = [len(w) * self.config["scale"] for w in words]
        return TaskOutput(metrics={"score": sum(lengths) / len(lengths)}, samples={"id": words, "length": lengths})
'''


def save_weights(path: Path, seed: int) -> None:
    """A 2-block ViT with 64 channels in DINO's plain state-dict layout."""
    torch.manual_seed(seed)
    model = timm.create_model("vit_base_patch16_224", pretrained=False, embed_dim=64, depth=2, num_heads=1,
                              num_classes=0)
    torch.save(model.state_dict(), path)


@pytest.fixture
def setup(tmp_path, monkeypatch, plugin):
    monkeypatch.setenv("I2V_BENCH_CACHE", str(tmp_path / "cache"))  # the weights-digest memo goes here
    (tmp_path / "data" / "clips").mkdir(parents=True)
    (tmp_path / "data" / "clips" / "labels.txt").write_text("jump run swim\n")
    os.symlink(plugin, tmp_path / "probe.py")
    save_weights(tmp_path / "w.pth", 0)
    return tmp_path


def common(root: Path) -> list[str]:
    return ["--plugin", str((root / "probe.py").resolve()), "--weights", str(root / "w.pth"), "--set", "dino.num_heads=1",
            "--tasks", "rec_probe", "--data-root", str(root / "data"), "--results", str(root / "res"), "--no-progress",
            "--no-cache"]


def run(root: Path, *extra: str) -> int:
    return main(["run", "--method", "frozen", "--backbone", "dino", *common(root), *extra])


def current(root: Path, variant: str = "dino.num_heads=1") -> Path:
    return root / "res" / "frozen" / "dino" / "rec_probe" / variant / "seed0.json"


def stale_beside(path: Path) -> list[Path]:
    return sorted(path.parent.glob("seed0.stale-*.json"))


def test_record_holds_identity_samples_and_overrides(setup, capsys):
    assert run(setup) == 0
    rec = read_record(current(setup))
    assert rec.schema_version == 2 and rec.variant == "dino.num_heads=1"
    assert rec.weights_digest == hashlib.sha256((setup / "w.pth").read_bytes()).hexdigest()
    assert rec.versions == {"task": 1, "method": 1} and rec.data_fingerprint["data"]
    assert rec.samples == {"id": ["jump", "run", "swim"], "length": [4.0, 3.0, 4.0]}
    assert (rec.sample_unit, rec.sample_metric) == ("query", "length")
    assert rec.overrides_applied == {"suite": None, "sections": {"dino": {"num_heads": 1}}}
    assert "overrides applied" not in capsys.readouterr().err  # no suite, nothing hidden to announce
    assert ResultRecord.from_json(json.loads(current(setup).read_text())) == rec  # the JSON round trip is lossless
    before = current(setup).stat().st_mtime_ns
    assert run(setup) == 0
    assert "already present" in capsys.readouterr().err and current(setup).stat().st_mtime_ns == before


def test_new_weights_bytes_at_the_same_path_recompute_and_keep_the_old_record(setup, capsys):
    assert run(setup) == 0
    first = read_record(current(setup))
    save_weights(setup / "w.pth", 1)
    assert run(setup) == 0
    assert "stale (weights digest" in capsys.readouterr().err
    second = read_record(current(setup))
    assert second.weights_digest != first.weights_digest and second.identity != first.identity
    (kept,) = stale_beside(current(setup))
    assert kept.name == f"seed0.stale-{first.identity[:8]}.json" and read_record(kept).weights_digest == first.weights_digest
    assert main(["list", "results", "--results", str(setup / "res"), "--stale"]) == 0
    assert capsys.readouterr().out.strip() == f"{kept}: superseded by {current(setup)}"


@pytest.mark.parametrize("change", ["bytes", "mtime"])
def test_changed_annotation_recomputes(setup, change):
    assert run(setup) == 0
    labels = setup / "data" / "clips" / "labels.txt"
    if change == "bytes":
        labels.write_text("jump run swims\n")
    else:
        st = labels.stat()
        os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert run(setup) == 0
    assert len(stale_beside(current(setup))) == 1
    rec = read_record(current(setup))
    assert rec.samples["id"] == (["jump", "run", "swims"] if change == "bytes" else ["jump", "run", "swim"])


def test_task_version_bump_marks_old_records_stale(setup, capsys, monkeypatch):
    assert run(setup) == 0
    from benchmark.registry import TASKS

    monkeypatch.setattr(TASKS.get("rec_probe"), "version", 2)  # what the task's author does on a metric fix
    capsys.readouterr()
    assert main(["list", "results", "--results", str(setup / "res"), "--stale", "--plugin", str((setup / "probe.py").resolve())]) == 0
    assert capsys.readouterr().out.strip() == f"{current(setup)}: task version 1 -> 2"
    assert main(["sweep", "--methods", "frozen", "--backbones", "dino", *common(setup), "--dry-run"]) == 0
    assert "frozen x dino (seed 0): run rec_probe; recompute stale rec_probe" in capsys.readouterr().out
    assert run(setup) == 0
    assert read_record(current(setup)).versions["task"] == 2
    assert [read_record(p).versions["task"] for p in stale_beside(current(setup))] == [1]
    capsys.readouterr()
    assert main(["list", "results", "--results", str(setup / "res"), "--stale", "--plugin", str((setup / "probe.py").resolve())]) == 0
    assert "task version" not in capsys.readouterr().out  # the current record is current again


def test_results_inside_the_data_folder_do_not_change_its_fingerprint(setup, capsys):
    """Writing results (and a link loop) under the data set's folder leaves the data's identity as it was."""
    clips = setup / "data" / "clips"
    os.symlink(clips, clips / "loop")
    argv = ["run", "--method", "frozen", "--backbone", "dino", *common(setup), "--results", str(clips / "res")]
    assert main(argv) == 0 and main(argv) == 0
    assert "already present" in capsys.readouterr().err
    assert main(["list", "results", "--results", str(clips / "res"), "--stale", "--plugin", str((setup / "probe.py").resolve())]) == 0
    assert capsys.readouterr().out == ""


def test_two_variants_coexist_and_both_show_in_the_table(setup, capsys):
    assert run(setup) == 0
    assert run(setup, "--set", "rec_probe.scale=2", "--set", "rec_probe.smooth.k=3") == 0
    assert run(setup, "--set", "rec_probe.scale=3", "--tag", "my ablation") == 0
    variants = sorted(r.variant for r in iter_results(setup / "res"))
    assert variants == ["dino.num_heads=1", "dino.num_heads=1,scale=2.0,smooth.k=3", "my_ablation"]
    capsys.readouterr()
    assert main(["table", "--results", str(setup / "res")]) == 0
    rows = {line.split("|")[3].strip(): line.split("|")[4].strip() for line in capsys.readouterr().out.splitlines()
            if line.startswith("| dino")}
    assert rows == {"dino.num_heads=1": "3.667", "dino.num_heads=1,scale=2.0,smooth.k=3": "_7.333_",
                    "my_ablation": "**11.000**"}


def test_version_1_records_are_listed_as_stale_with_why(tmp_path, capsys):
    import shutil

    shutil.copytree(Path(__file__).parent / "fixtures" / "results_v1", tmp_path / "r")
    assert main(["list", "results", "--results", str(tmp_path / "r"), "--stale"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path / 'r/frozen/efficientnet_lite0/tradeoff__seed0.json'}: schema version 1")
    (rec,) = iter_results(tmp_path / "r")
    assert (rec.schema_version, rec.variant, rec.identity, rec.main_metric) == (1, "v1", "", "D_margin")


BACKBONE_PLUGIN = """
from pathlib import Path

import torch

from benchmark.backbones.base import Backbone, BackboneMeta
from benchmark.registry import BACKBONES

FILE = Path(__file__).with_name("rec_tiny.pt")


@BACKBONES.register("rec_tiny")
class RecTiny(Backbone):
    \"\"\"Mean colour per 16-pixel patch times a loaded scale; loads FILE unless --weights says otherwise.\"\"\"
    meta = BackboneMeta("rec_tiny", "none", "cnn")
    stride, dim = 16, 3

    def __init__(self, weights=None):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.load(weights or FILE, weights_only=True)["scale"])
        self.weights_id = "rec_tiny"

    @staticmethod
    def default_weights_file():
        return FILE

    def tokens(self, x):
        return torch.nn.functional.avg_pool2d(x, 16).permute(0, 2, 3, 1) * self.scale
"""


def test_a_backbones_default_weights_file_is_digested_too(tmp_path, monkeypatch, capsys):
    """Without --weights the backbone's ``default_weights_file()`` hook names the file; new bytes recompute."""
    monkeypatch.setenv("I2V_BENCH_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "rec_tiny_backbone.py").write_text(BACKBONE_PLUGIN)
    torch.save({"scale": torch.tensor(1.0)}, folder / "rec_tiny.pt")
    (tmp_path / "data" / "clips").mkdir(parents=True)
    argv = ["run", "--plugin", str(folder / "rec_tiny_backbone.py"), "--method", "frozen", "--backbone", "rec_tiny",
            "--tasks", "tradeoff", "--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "res"),
            "--no-progress", "--no-cache", "--set", "tradeoff.num_frames=8", "--set", "tradeoff.resize_short=64",
            "--set", "tradeoff.crop=64"]
    write_pan_clips(tmp_path / "data" / "clips")
    assert main(argv) == 0
    (path,) = (tmp_path / "res").glob("frozen/rec_tiny/tradeoff/*/seed0.json")
    first = read_record(path)
    assert first.weights_digest == hashlib.sha256((folder / "rec_tiny.pt").read_bytes()).hexdigest()
    torch.save({"scale": torch.tensor(2.0)}, folder / "rec_tiny.pt")
    assert main(argv) == 0
    assert "stale (weights digest" in capsys.readouterr().err
    assert read_record(path).weights_digest != first.weights_digest and len(stale_beside(path)) == 1


def write_pan_clips(folder: Path) -> None:
    """Two 8-frame 64×64 frame folders panning over scikit-image photos."""
    from PIL import Image
    from skimage import data

    for name in ("astronaut", "coffee"):
        img = getattr(data, name)()
        (folder / name).mkdir()
        for t in range(8):
            Image.fromarray(img[100 + 3 * t:164 + 3 * t, 100 + 2 * t:164 + 2 * t]).save(folder / name / f"{t:03d}.png")


def test_a_checkpoint_of_another_shape_says_so_in_the_label_and_the_record(setup, capsys):
    """A ViT-S in MAE's layout loaded as `mae` (a ViT-B variant) runs at the file's shape, and the label and
    record say `mae (ViT-S/16 from checkpoint)`, never plain `mae`; a ViT-B file keeps the plain name."""
    from benchmark.backbones.vit import _arch_note

    torch.manual_seed(0)
    small = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0)
    torch.save({"model": small.state_dict()}, setup / "mae_vits.pth")  # MAE's release wraps the state in "model"
    argv = ["run", "--method", "frozen", "--backbone", "mae", *common(setup)]
    argv[argv.index("--weights") + 1] = str(setup / "mae_vits.pth")
    argv[argv.index("--set") + 1] = "mae.num_heads=6"
    assert main(argv) == 0
    (record,) = iter_results(setup / "res")
    assert record.backbone == "mae" and record.backbone_label == "mae (ViT-S/16 from checkpoint)"
    assert "| mae (ViT-S/16 from checkpoint)" in capsys.readouterr().out
    assert _arch_note("vit_base_patch16_224", {"embed_dim": 768, "depth": 12, "patch_size": 16}) == ""
    assert _arch_note("vit_base_patch16_224", {"embed_dim": 64, "depth": 2, "patch_size": 16}) == " (ViT-64x2/16 from checkpoint)"
