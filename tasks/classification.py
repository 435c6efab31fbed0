"""Action classification on frozen (or method-adapted) video embeddings: linear probe and k-NN.

Video embeddings come from :mod:`tasks.video_features` (uniform clips, optional multi-clip
averaging), computed once per video and cached in memory, then:

* **Linear probe** — DINOv2's linear evaluation (``dinov2/eval/linear.py``): one ``Linear(C, K)``
  per learning rate (weights N(0, 0.01), bias 0), *all trained together in one pass* over the same
  shuffled batches of cached features, SGD momentum 0.9, no weight decay, ``lr × batch / 256``,
  cosine annealing to 0 over ``epochs × epoch_length`` iterations, batch 128; the best classifier is
  reported. DINOv2 picks it on the evaluation set (``lr_selection: test``); ``lr_selection: holdout``
  picks it on ``holdout_fraction`` of the training videos instead and is the unbiased variant.
* **k-NN** — DINOv2's weighted k-NN (``dinov2/eval/knn.py``): L2-normalised features, cosine
  similarity, the k nearest training videos vote with weight ``exp(sim / T)``, k ∈ {10, 20},
  T = 0.07.

``mode: finetune`` instead fine-tunes a copy of the encoder end to end on the labels
(:mod:`tasks.supervised_finetune`). Top-1/top-5 are mmaction2's ``top_k_accuracy``. Splits: UCF101 / HMDB51 split 1 (train → test),
SSv2 train → validation.

Per-sample scores are per test video (id: its path relative to the data set folder): ``label``, the
linear probe's ``predicted`` class and ``correct`` (0/1, whose mean is ``top1``; in ``finetune`` mode
the fine-tuned model's), and ``knn<k>_correct`` for each k-NN.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from benchmark.context import RunContext
from benchmark.errors import UserError
from benchmark.schemas import Pos, PosFloat, Strict
from tasks.base import TaskMeta, TaskOutput
from tasks.supervised_finetune import FineTuneConfig, finetune_classify
from tasks.video_features import ClipSampling, LabelledVideoTask, SplitClipSampling, video_embeddings
from benchmark.registry import TASKS


def top_k(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """``{"top1": …, "top5": …}`` from class scores ``(N, K)`` (mmaction2's ``top_k_accuracy``)."""
    from mmaction.evaluation.functional import top_k_accuracy

    accs = top_k_accuracy(scores.float().cpu().numpy(), labels.cpu().numpy().tolist(), ks)
    return {f"top{k}": float(a) for k, a in zip(ks, accs)}


def top1_predictions(scores: torch.Tensor) -> np.ndarray:
    """Predicted class per row, ties broken as mmaction2's ``top_k_accuracy`` (the last of ``argsort``),
    so that the mean of ``predicted == label`` is exactly its top-1."""
    return np.argsort(scores.float().cpu().numpy(), axis=1)[:, -1]


def train_linear_classifiers(x: torch.Tensor, y: torch.Tensor, num_classes: int, lrs: list[float],
                             iterations: int, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """DINOv2-style sweep: ``len(lrs)`` linear classifiers trained on identical batches at once.

    Returns:
        weights ``(L, C, K)`` and biases ``(L, K)``, one classifier per learning rate.
    """
    if x.shape[0] == 0:
        raise UserError("linear probe has no training samples: check the training split")
    g = torch.Generator().manual_seed(seed)
    n_lr, dim = len(lrs), x.shape[1]
    w = (torch.randn(n_lr, dim, num_classes, generator=g) * 0.01).requires_grad_(True)
    b = torch.zeros(n_lr, num_classes, requires_grad=True)
    scaled = torch.tensor([lr * batch_size / 256 for lr in lrs])
    buf_w, buf_b = torch.zeros_like(w), torch.zeros_like(b)
    stream = torch.cat([torch.randperm(x.shape[0], generator=g)
                        for _ in range(iterations * batch_size // x.shape[0] + 1)])
    for it in range(iterations):
        idx = stream[it * batch_size : (it + 1) * batch_size]
        logits = torch.einsum("nc,lck->lnk", x[idx], w) + b[:, None]
        # summed over classifiers: each one's gradient depends only on its own loss
        loss = F.cross_entropy(logits.reshape(-1, num_classes), y[idx].repeat(n_lr), reduction="none").view(n_lr, -1).mean(1).sum()
        gw, gb = torch.autograd.grad(loss, [w, b])
        lr_now = scaled * 0.5 * (1 + np.cos(np.pi * it / iterations))  # CosineAnnealingLR(max_iter, eta_min=0)
        with torch.no_grad():  # torch.optim.SGD(momentum=0.9, dampening=0), one lr per classifier
            buf_w.mul_(0.9).add_(gw)
            buf_b.mul_(0.9).add_(gb)
            w.sub_(lr_now[:, None, None] * buf_w)
            b.sub_(lr_now[:, None] * buf_b)
    return w.detach(), b.detach()


def linear_probe(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
                 num_classes: int, cfg: dict[str, Any], seed: int) -> tuple[dict[str, float], torch.Tensor]:
    """Train the lr sweep, select one classifier (``cfg['lr_selection']``) and score it on the test set.

    Returns:
        the metrics and the selected classifier's test scores ``(N_test, K)``.
    """
    sel = cfg["lr_selection"]
    if sel not in ("test", "holdout"):
        raise UserError(f"lr_selection must be 'test' (DINOv2) or 'holdout', got {sel!r}")
    fit_x, fit_y, val_x, val_y = xtr, ytr, xte, yte
    if sel == "holdout":
        perm = torch.randperm(xtr.shape[0], generator=torch.Generator().manual_seed(seed))
        n_val = max(1, int(round(cfg["holdout_fraction"] * xtr.shape[0])))
        val, fit = perm[:n_val], perm[n_val:]
        fit_x, fit_y, val_x, val_y = xtr[fit], ytr[fit], xtr[val], ytr[val]
    lrs = [float(v) for v in cfg["learning_rates"]]
    w, b = train_linear_classifiers(fit_x, fit_y, num_classes, lrs, int(cfg["iterations"]), int(cfg["linear_batch_size"]), seed)
    val_acc = [(torch.argmax(val_x @ w[i] + b[i], 1) == val_y).float().mean().item() for i in range(len(lrs))]
    best = int(np.argmax(val_acc))
    scores = xte @ w[best] + b[best]
    return {**top_k(scores, yte), "linear_best_lr": lrs[best]}, scores


def knn_scores(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, num_classes: int, k: int,
               temperature: float) -> torch.Tensor:
    """DINOv2 weighted k-NN class scores ``(N_test, K)``: votes ``exp(cos / T)`` of the k nearest."""
    sim = F.normalize(xte, dim=1) @ F.normalize(xtr, dim=1).T
    top_sim, top_idx = sim.topk(min(k, xtr.shape[0]), dim=1)
    votes = F.one_hot(ytr[top_idx], num_classes).float() * (top_sim / temperature).exp()[..., None]
    return votes.sum(1)


class LinearProbeConfig(Strict):
    """The schedule of :func:`train_linear_classifiers`, for every task that trains a linear probe."""

    iterations: Pos
    linear_batch_size: Pos


class ClassificationConfig(ClipSampling, LinearProbeConfig):
    """The keys of every classification task's YAML (configs/tasks/*_cls.yaml)."""

    learning_rates: Annotated[list[PosFloat], Field(min_length=1)]
    lr_selection: Literal["test", "holdout"]
    holdout_fraction: Annotated[float, Field(gt=0, lt=1)]
    knn_k: Annotated[list[Pos], Field(min_length=1)]
    knn_temperature: PosFloat
    mode: Literal["probe", "finetune"]
    finetune: FineTuneConfig


class SplitClassificationConfig(ClassificationConfig, SplitClipSampling):
    """UCF101 and HMDB51: the classification keys plus the split number."""


class VideoClassification(LabelledVideoTask):
    """Linear probe + k-NN top-1/top-5 on one data set's train → test split."""

    meta: ClassVar[TaskMeta]
    version = 2  # 2: per-video samples
    Config = ClassificationConfig

    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        cfg = self.config
        train, test, classes = self.load_split(ctx)
        yte = torch.tensor([v.label for v in test])
        samples: dict[str, list] = {"id": self.sample_ids(test, ctx.dataset_path(self.meta.dataset)),
                                    "label": yte.tolist()}
        if cfg["mode"] == "finetune":
            logits, record = finetune_classify(method, train, test, len(classes), cfg, ctx)
            details = {"mode": "finetune", "num_train": len(train), "num_test": len(test),
                       "num_classes": len(classes), "finetune": record}
            return TaskOutput(metrics=top_k(logits, yte), details=details, samples=_add_predictions(samples, logits))
        xtr = video_embeddings(method, train, cfg, ctx, "train videos")
        xte = video_embeddings(method, test, cfg, ctx, "test videos")
        ytr = torch.tensor([v.label for v in train])
        metrics, scores = linear_probe(xtr, ytr, xte, yte, len(classes), cfg, ctx.seed)
        samples = _add_predictions(samples, scores)
        for k in cfg["knn_k"]:
            knn = knn_scores(xtr, ytr, xte, len(classes), int(k), float(cfg["knn_temperature"]))
            metrics.update({f"knn{k}_{name}": v for name, v in top_k(knn, yte).items()})
            samples[f"knn{k}_correct"] = (top1_predictions(knn) == yte.numpy()).astype(int).tolist()
        details = {"num_train": len(train), "num_test": len(test), "num_classes": len(classes)}
        return TaskOutput(metrics=metrics, details=details, samples=samples)


def _add_predictions(samples: dict[str, list], scores: torch.Tensor) -> dict[str, list]:
    predicted = top1_predictions(scores)
    return {**samples, "predicted": predicted.tolist(),
            "correct": (predicted == np.asarray(samples["label"])).astype(int).tolist()}


@TASKS.register("ucf101_cls", "UCF101 linear probe + k-NN, top-1")
class UCF101Classification(VideoClassification):
    """UCF101 linear probe + k-NN, top-1."""

    meta = TaskMeta(name="ucf101_cls", dataset="ucf101", main_metric="top1", sample_metric="correct",
                    protocol="UCF101 split 1; DINOv2 linear eval (lr sweep) + weighted k-NN (k 10/20, T 0.07)")
    reader = "benchmark.data.ucf101:load_ucf101"
    Config = SplitClassificationConfig


@TASKS.register("hmdb51_cls", "HMDB51 linear probe + k-NN, top-1")
class HMDB51Classification(VideoClassification):
    """HMDB51 linear probe + k-NN, top-1."""

    meta = TaskMeta(name="hmdb51_cls", dataset="hmdb51", main_metric="top1", sample_metric="correct",
                    protocol="HMDB51 split 1; DINOv2 linear eval (lr sweep) + weighted k-NN (k 10/20, T 0.07)")
    reader = "benchmark.data.hmdb51:load_hmdb51"
    Config = SplitClassificationConfig


@TASKS.register("ssv2_cls", "Something-Something v2 linear probe + k-NN, top-1")
class SSv2Classification(VideoClassification):
    """Something-Something v2 linear probe + k-NN, top-1."""

    meta = TaskMeta(name="ssv2_cls", dataset="ssv2", main_metric="top1", sample_metric="correct",
                    protocol="SSv2 train → validation; DINOv2 linear eval (lr sweep) + weighted k-NN (k 10/20, T 0.07)")
    reader = "benchmark.data.ssv2:load_ssv2"
