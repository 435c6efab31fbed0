"""Classification probes on constructed features, and the acceptance case on the toy SSv2 classes:
a temporal module beats frozen mean pooling on classes that differ only in temporal order."""
from __future__ import annotations

import pytest
import torch

from benchmark.errors import UserError
from tasks.classification import knn_scores, linear_probe, top_k


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
    out = linear_probe(xtr, ytr, xte, yte, 3, cfg, seed=0)
    assert out["linear_best_lr"] == 1.0 and out["top1"] == 1.0
    with pytest.raises(UserError, match="lr_selection"):
        linear_probe(xtr, ytr, xte, yte, 3, {**cfg, "lr_selection": "val"}, seed=0)


def _probe_correct(task, method, ctx) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-test-video correctness of the task's linear-probe sweep, its lr picked on a held-out tenth
    of the training videos (the unbiased ``lr_selection: holdout``), and the test labels."""
    from tasks.classification import train_linear_classifiers
    from tasks.video_features import load_labelled_split, video_embeddings

    cfg = task.config
    train, test, classes = load_labelled_split(task.meta.dataset, ctx, cfg)
    xtr, xte = video_embeddings(method, train, cfg), video_embeddings(method, test, cfg)
    ytr, yte = torch.tensor([v.label for v in train]), torch.tensor([v.label for v in test])
    val = torch.arange(len(train)) % 10 == 0
    lrs = [float(v) for v in cfg["learning_rates"]]
    w, b = train_linear_classifiers(xtr[~val], ytr[~val], len(classes), lrs, int(cfg["iterations"]),
                                    int(cfg["linear_batch_size"]), seed=0)
    best = max(range(len(lrs)), key=lambda i: ((xtr[val] @ w[i] + b[i]).argmax(1) == ytr[val]).float().mean().item())
    return ((xte @ w[best] + b[best]).argmax(1) == yte).float(), yte


def test_advise_beats_frozen_on_temporal_order_classes_paired_ci(toy_root, tmp_path):
    """Toy SSv2: per axis, "forward", "reversed" and "and back" hold the same multiset of frames, so a
    frozen mean-pooled embedding is at chance within an axis. AdViSe, trained with the toy suite's own
    settings, sees the "and back" class move twice as fast and turn (its rate pretext is about speed;
    it is blind to direction, see methods/advise.py). Asserted on the 95 % paired-bootstrap CI of the
    per-video Δ (advise − frozen correctness on the same 240 test videos): clear of zero."""
    from benchmark.backbones import build_backbone
    from benchmark.cache import FeatureCache
    from benchmark.config import defaults, merge, suites
    from benchmark.stats import paired
    from methods.advise import AdViSe
    from methods.frozen import Frozen
    from tests.tasks.toy_setup import toy_ctx, toy_task

    backbone = build_backbone("efficientnet_lite0")
    task, ctx = toy_task("ssv2_cls"), toy_ctx(toy_root, tmp_path)
    cache = FeatureCache(tmp_path / "features")  # both methods read the same frozen tokens: one encoder pass
    frozen = Frozen(backbone, {})
    torch.manual_seed(0)
    advise = AdViSe(backbone, merge(defaults("method", "advise"), suites()["toy"]["overrides"]["advise"], "toy.advise"))
    frozen.feature_cache = advise.feature_cache = cache
    record = advise.fit(ctx)
    assert record["epoch_curve"][-1]["rate_acc"] > 0.5  # the rate pretext is learnt (chance 0.25)
    f_correct, labels = _probe_correct(task, frozen, ctx)
    a_correct, _ = _probe_correct(task, advise, ctx)
    assert len(labels) >= 200
    result = paired(f_correct.numpy(), a_correct.numpy(), resamples=10_000, seed=0)
    assert result.ci_low > 0, (result.describe(), f_correct.mean(), a_correct.mean())
