"""End to end through ``bench run``: Co-Settle trains and its record, with the resolved per-backbone
choices, lands in the ``tradeoff`` result beside the frozen encoder's. Backbone: ``efficientnet_lite0``
(the offline pretrained encoder; PEA is off on a CNN). Two iterations on three clips support no claim
about the method's effect: ``test_cosettle_consistency.py`` pins that on a paired CI.
"""
from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from tests.methods.conftest import (
    HELD_OUT_PHOTOS,
    write_mae_checkpoint,
    write_pan_videos,
)

TRAIN = {"input_size": 96, "pre_resize": 112, "train_batch_size": 2, "epochs": 1, "warmup_epochs": 0,
         "num_workers": 0, "lr": 0.001}
TRADEOFF = {"num_frames": 12, "resize_short": 112, "crop": 96, "edge_skip": 1}


def sets(section: str, values: dict) -> list[str]:
    return [arg for k, v in values.items() for arg in ("--set", f"{section}.{k}={v}")]


@pytest.fixture(scope="module")
def held_out_clips(tmp_path_factory):
    return write_pan_videos(tmp_path_factory.mktemp("clips"), n_videos=3, n_frames=12, photos=HELD_OUT_PHOTOS)


def bench(method, backbone, clips, train, results, *extra):
    argv = ["run", "--method", method, "--backbone", backbone, "--tasks", "tradeoff", "--data", f"clips={clips}",
            "--train-data", str(train), "--results", str(results), "--no-progress", *sets("tradeoff", TRADEOFF), *extra]
    if method != "frozen":
        argv += sets(method, TRAIN)
    assert main(argv) == 0
    (path,) = (results / method / backbone / "tradeoff").glob("*/seed0.json")
    return json.loads(path.read_text())


def test_cosettle_records_its_training_in_the_result(pan_videos, held_out_clips, tmp_path):
    frozen = bench("frozen", "efficientnet_lite0", held_out_clips, pan_videos, tmp_path)
    cos = bench("cosettle", "efficientnet_lite0", held_out_clips, pan_videos, tmp_path)
    training = cos["training"]
    assert training["iterations"] == 2 and len(training["curve"]) == 2 and training["asymmetric_pe"] is False
    assert training["trainable_params"] == 112 * 112 + 112 + 2 * 112
    assert (training["init"], training["token_norm"]) == ("xavier_uniform", "layernorm")
    assert cos["config"]["backbone"]["precision"] == frozen["config"]["backbone"]["precision"] == "fp32"
    assert cos["metrics"]["D_margin"] != frozen["metrics"]["D_margin"]  # the projection's features were scored


def test_bench_run_cosettle_on_an_mae_layout_file(pan_videos, held_out_clips, tmp_path):
    weights = write_mae_checkpoint(tmp_path / "mae_pretrain_vit_base.pth")
    out = bench("cosettle", "mae", held_out_clips, pan_videos, tmp_path / "results", "--weights", str(weights))
    assert out["status"] == "ok" and out["training"]["asymmetric_pe"] is True
    assert out["config"]["backbone"]["pos_interp"] == "dino" and out["training"]["init"] == "xavier_uniform"
    assert out["weights_id"].startswith("mae_pretrain_vit_base.pth@sha256:")
