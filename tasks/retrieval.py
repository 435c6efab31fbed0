"""Nearest-neighbour video retrieval on UCF101 / HMDB51 (Recall@1/5/10/20).

The protocol of Xu et al. (VCOP, CVPR 2019) used by most video self-supervised papers: every test
video of split 1 is a query, the train videos of split 1 are the gallery, ranking is by cosine
similarity of video features, and Recall@k counts a query as retrieved when any of its k nearest
neighbours shares its class (:mod:`tasks.metrics.retrieval`). A video's feature is the average of
its clips' embeddings (VCOP samples 10 clips of 16 frames per video), from the shared
:mod:`tasks.video_features`.
"""
from __future__ import annotations

from typing import Any

import torch

from benchmark.context import RunContext
from benchmark.errors import UserError
from tasks.base import Task, TaskMeta, TaskOutput
from tasks.metrics.retrieval import recall_at_k
from tasks.video_features import load_labelled_split, video_embeddings


class VideoRetrieval(Task):
    """Test videos as queries against train videos, Recall@k."""


    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        cfg = self.config
        train, test, classes = load_labelled_split(self.meta.dataset, ctx, cfg)
        if not train or not test:
            raise UserError(f"{self.meta.name}: the split has {len(train)} train and {len(test)} test videos; both must be non-empty")
        gallery = video_embeddings(method, train, cfg, ctx, "gallery (train) videos")
        queries = video_embeddings(method, test, cfg, ctx, "query (test) videos")
        metrics = recall_at_k(queries, torch.tensor([v.label for v in test]), gallery,
                              torch.tensor([v.label for v in train]), tuple(int(k) for k in cfg["ks"]))
        details = {"num_queries": len(test), "num_gallery": len(train), "num_classes": len(classes)}
        return TaskOutput(metrics=metrics, details=details)


class UCF101Retrieval(VideoRetrieval):
    """UCF101 video retrieval, Recall@1/5/10/20."""

    meta = TaskMeta(name="ucf101_retrieval", dataset="ucf101", main_metric="R@1",
                    protocol="UCF101 split 1, test → train cosine NN retrieval (Xu et al., CVPR 2019)")


class HMDB51Retrieval(VideoRetrieval):
    """HMDB51 video retrieval, Recall@1/5/10/20."""

    meta = TaskMeta(name="hmdb51_retrieval", dataset="hmdb51", main_metric="R@1",
                    protocol="HMDB51 split 1, test → train cosine NN retrieval (Xu et al., CVPR 2019)")
