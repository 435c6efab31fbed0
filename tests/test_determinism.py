"""Same seed, same numbers: two CPU runs into two result folders agree exactly, and say how they were made."""
from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.results import read_record

CLASSES = ("Bouncing", "Orbiting")
# a linear probe has seeded randomness (classifier init, batch order): the part that could drift
PROBE = ["--set", "ucf101_cls.num_frames=4", "--set", "ucf101_cls.short_side=64", "--set", "ucf101_cls.crop=64",
         "--set", "ucf101_cls.iterations=20", "--set", "ucf101_cls.linear_batch_size=4",
         "--set", "ucf101_cls.learning_rates=[0.01, 1.0]", "--set", "ucf101_cls.knn_k=[2]"]


@pytest.fixture()
def small_ucf(toy_root: Path, tmp_path: Path) -> Path:
    """The toy UCF101 cut to two classes, three train and two test videos each, in the real layout."""
    src, root = toy_root / "UCF101", tmp_path / "data" / "UCF101"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\r\n" for i, c in enumerate(CLASSES, 1)))
    for name, keep in (("trainlist01.txt", 3), ("testlist01.txt", 2)):
        lines = (src / "ucfTrainTestlist" / name).read_text().splitlines()
        kept = [ln for c in CLASSES for ln in [ln for ln in lines if ln.startswith(f"{c}/")][:keep]]
        (lists / name).write_text("\r\n".join(kept) + "\r\n")
        for ln in kept:
            rel = ln.split()[0]
            (root / "UCF-101" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / "UCF-101" / rel, root / "UCF-101" / rel)
    return tmp_path / "data"


def test_same_seed_same_metrics_and_the_record_says_how(small_ucf, tmp_path):
    def record(run: str, seed: int) -> dict:
        (path,) = (tmp_path / run).glob(f"frozen/efficientnet_lite0/ucf101_cls/*/seed{seed}.json")
        assert read_record(path).seed == seed  # the store's reader takes it
        return json.loads(path.read_text())

    for run, seeds in (("a", "3,4"), ("b", "3")):
        assert main(["run", "--method", "frozen", "--backbone", "efficientnet_lite0", "--tasks", "ucf101_cls",
                     "--seeds", seeds, "--data-root", str(small_ucf), "--results", str(tmp_path / run), "--no-progress",
                     *PROBE]) == 0
    a, b = record("a", 3), record("b", 3)
    assert a["metrics"] == b["metrics"]  # exactly, not approximately
    assert record("a", 4)["metrics"] != a["metrics"]  # the seed does reach the probe: the equality is not vacuous
    assert a["config_hash"] == b["config_hash"] and a["identity"] == b["identity"]
    assert a["provenance"]["started"] != b["provenance"]["started"]  # two real runs

    assert a["seed"] == 3
    assert a["provenance"]["determinism"] == {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }
    for package in ("torch", "torchvision", "timm", "numpy"):
        assert a["provenance"]["packages"][package] == version(package)
    assert a["provenance"]["python"] and a["provenance"]["git"]["commit"]
