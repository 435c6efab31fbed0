"""Supervised end-to-end fine-tuning mode of the classification tasks."""
from __future__ import annotations

import torch


def test_finetune_mode_trains_a_copy_of_the_encoder(toy_root, tmp_path):
    from benchmark.backbones import build_backbone
    from methods.frozen import Frozen
    from tests.tasks.toy_setup import check_samples, toy_ctx, toy_task

    backbone = build_backbone("efficientnet_lite0")
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    task = toy_task("ucf101_cls", num_frames=2, stride=4, short_side=64, crop=64, mode="finetune",
                    finetune={"epochs": 3, "lr": 1e-3, "weight_decay": 0.0, "batch_size": 8, "label_smoothing": 0.0})
    out = task.evaluate(Frozen(backbone, {}), toy_ctx(toy_root, tmp_path))
    record = out.details["finetune"]
    assert out.details["mode"] == "finetune" and 0.0 <= out.metrics["top1"] <= out.metrics["top5"] <= 1.0
    assert record["trainable_params"] > 4_000_000  # the whole encoder plus the head trains
    assert record["curve"][-1]["loss"] < record["curve"][0]["loss"]  # it learns the training videos
    check_samples(task, out, out.details["num_test"])  # per-video correct and predicted label, as the probe's
    assert out.samples["correct"] == [int(p == y) for p, y in zip(out.samples["predicted"], out.samples["label"])]
    # the method's own (frozen) encoder is untouched: fine-tuning works on a copy
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())


def test_unknown_mode_is_refused_before_anything_runs(toy_root, tmp_path, capsys):
    from benchmark.cli import main

    assert main(["run", "--method", "frozen", "--backbone", "vit_tiny_random", "--tasks", "ucf101_cls", "--data-root",
                 str(toy_root), "--results", str(tmp_path / "res"), "--set", "ucf101_cls.mode=linear"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mode" in err[0] and "'probe'" in err[0], err
    assert not (tmp_path / "res").exists()