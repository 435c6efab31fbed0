"""Classification probes on constructed features, and the acceptance case on the toy SSv2 classes:
a temporal module beats frozen mean pooling on classes that differ only in temporal order."""
from __future__ import annotations

import pytest
import torch

from benchmark.errors import UserError
from tasks.classification import knn_scores, linear_probe, top1_predictions, top_k


def test_top_k_exact():
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    labels = torch.tensor([2, 0, 0])
    assert top_k(scores, labels, (1, 2)) == pytest.approx({"top1": 1 / 3, "top2": 2 / 3})


def test_knn_weighted_vote_hand_computed():
    xtr = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    ytr = torch.tensor([0, 1, 1])
    s = knn_scores(xtr, ytr, torch.tensor([[1.0, 0.0]]), num_classes=2, k=2, temperature=0.5)
    # neighbours: item 0 (cos 1) and item 1 (cos 0.8) → class 0: e^(1/0.5), class 1: e^(0.8/0.5)
    assert s[0].tolist() == pytest.approx([torch.e ** 2, torch.e ** 1.6])


def _blobs(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    return torch.eye(3)[y] * 4 + torch.randn(n, 3, generator=g) * 0.5, y


def test_linear_probe_sweep_learns_and_selects_the_working_lr():
    xtr, ytr = _blobs(60, 0)
    xte, yte = _blobs(30, 1)
    cfg = {"learning_rates": [1e-7, 1.0], "iterations": 200, "linear_batch_size": 16, "lr_selection": "holdout",
           "holdout_fraction": 0.2}
    out, scores = linear_probe(xtr, ytr, xte, yte, 3, cfg, seed=0)
    assert out["linear_best_lr"] == 1.0 and out["top1"] == 1.0 and scores.shape == (30, 3)
    with pytest.raises(UserError, match="lr_selection"):
        linear_probe(xtr, ytr, xte, yte, 3, {**cfg, "lr_selection": "val"}, seed=0)


def test_tied_scores_predict_as_mmaction_counts_top1():
    scores = torch.tensor([[0.5, 0.5, 0.1], [0.2, 0.7, 0.7]])  # ties: mmaction2's argsort takes the last
    labels = torch.tensor([1, 2])
    assert top1_predictions(scores).tolist() == [1, 2] and top_k(scores, labels, (1,))["top1"] == 1.0


def test_ucf101_probe_per_video_samples_on_toy(toy_root, tmp_path):
    from tests.tasks.toy_setup import check_samples, frozen_run

    task, out = frozen_run(toy_root, "ucf101_cls", tmp_path)  # 4 frames, 200 probe steps (toy_setup.QUICK)
    check_samples(task, out, out.details["num_test"])
    s = out.samples
    assert s["correct"] == [int(p == y) for p, y in zip(s["predicted"], s["label"])]
    assert all(i.endswith(".avi") and not i.startswith("/") for i in s["id"])
    for k in task.config["knn_k"]:
        assert sum(s[f"knn{k}_correct"]) / len(s["id"]) == pytest.approx(out.metrics[f"knn{k}_top1"])


def test_advise_sees_temporal_order_that_mean_pooling_cannot_paired_ci(toy_root, tmp_path):
    """Toy SSv2 test videos whose object slides along an axis, and the same frames shaken (the toy's
    "Shaking" order, 0, 4, 1, 5, …): the frozen mean-pooled embedding is identical for the two, while
    AdViSe, trained with the toy suite's own settings, perceives the shaken clip as faster. Asserted
    on the 95 % paired-bootstrap CI of the per-video Δ of AdViSe's expected playback-rate index
    (shaken − original): clear of zero; and the probe's per-video top-1 Δ over frozen, clear of zero.
    (AdViSe's pretext is blind to direction — a reversed clip has the same rate — so nothing is
    asserted about left vs right; see methods/advise.py.)"""
    from benchmark.backbones import build_backbone
    from benchmark.cache import install
    from benchmark.config import defaults, merge, suites
    from benchmark.data.toy.video import ssv2_order
    from benchmark.stats import paired
    from methods.advise import AdViSe
    from methods.frozen import Frozen
    from tasks.video_features import load_clips
    from tests.tasks.toy_setup import toy_ctx, toy_task

    backbone = build_backbone("efficientnet_lite0")
    task, ctx = toy_task("ssv2_cls"), toy_ctx(toy_root, tmp_path)
    torch.manual_seed(0)
    advise = AdViSe(backbone, merge(defaults("method", "advise"), suites()["toy"]["overrides"]["advise"], "toy.advise"))
    record = advise.fit(ctx)
    assert record["epoch_curve"][-1]["rate_acc"] > 0.5  # the rate pretext is learnt (chance 0.25)
    _, test, classes = task.load_split(ctx)
    sliding = [v for v in test if not classes[v.label].startswith("Shaking")]
    assert len(sliding) >= 150
    frozen, rates = Frozen(backbone, {}), torch.arange(len(advise.config["rates"]), dtype=torch.float32)
    for method in (frozen, advise):  # one cache: one encoder pass per clip
        install(method, tmp_path / "features")
    original, shaken = [], []
    with torch.inference_mode():
        for v in sliding:
            frames = load_clips(v.path, task.config)[0]
            order = torch.from_numpy(ssv2_order(2, len(frames), False))
            assert torch.allclose(frozen.video_embedding(frames), frozen.video_embedding(frames[order]), atol=1e-5)
            tokens = advise.spatial_features(advise.encode_frames(advise._input(frames)))  # per-frame: reorder tokens
            for out, t in ((original, tokens), (shaken, tokens[order])):
                out.append((advise.rate_logits(t[None]).softmax(-1)[0] @ rates).item())
    result = paired(original, shaken, resamples=10_000, seed=0)
    assert result.ci_low > 0, result.describe()

    # and so the task itself: AdViSe's top-1 over frozen mean pooling, paired over the 240 test videos
    top1 = paired(task.evaluate(frozen, ctx).samples["correct"], task.evaluate(advise, ctx).samples["correct"],
                  resamples=10_000, seed=0)
    assert top1.ci_low > 0, top1.describe()
