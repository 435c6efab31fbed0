"""Nearest-neighbour video retrieval on UCF101 / HMDB51 (Recall@1/5/10/20).

The protocol of Xu et al. (VCOP, CVPR 2019) used by most video self-supervised papers: every test
video of split 1 is a query, the train videos of split 1 are the gallery, ranking is by cosine
similarity of video features, and Recall@k counts a query as retrieved when any of its k nearest
neighbours shares its class (:mod:`tasks.metrics.retrieval`). A video's feature is the average of
its clips' embeddings (VCOP samples 10 clips of 16 frames per video), from the shared
:mod:`tasks.video_features`.

Per-sample scores are per query (id: the test video's path relative to the data set folder): ``R@k``
is 1 when the query is retrieved at k, so the mean of each column is the reported Recall@k.
"""
from __future__ import annotations

from typing import Annotated, Any

import torch
from pydantic import Field

from benchmark.context import RunContext
from benchmark.schemas import Pos
from tasks.base import TaskMeta
from tasks.base import TaskOutput
from tasks.metrics.retrieval import query_hits
from tasks.video_features import LabelledVideoTask, SplitClipSampling, video_embeddings
from benchmark.registry import TASKS


class VideoRetrieval(LabelledVideoTask):
    """Test videos as queries against train videos, Recall@k."""

    version = 2  # 2: per-query samples

    class Config(SplitClipSampling):
        """configs/tasks/{ucf101,hmdb51}_retrieval.yaml."""

        ks: Annotated[list[Pos], Field(min_length=1)]  # Recall@k

    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        cfg = self.config
        train, test, classes = self.load_split(ctx)
        gallery = video_embeddings(method, train, cfg, ctx, "gallery (train) videos")
        queries = video_embeddings(method, test, cfg, ctx, "query (test) videos")
        hits = query_hits(queries, torch.tensor([v.label for v in test]), gallery,
                          torch.tensor([v.label for v in train]), tuple(int(k) for k in cfg["ks"]))
        metrics = {key: float(sum(col)) / len(col) for key, col in hits.items()}
        samples = {"id": self.sample_ids(test, ctx.dataset_path(self.meta.dataset)), **hits}
        details = {"num_queries": len(test), "num_gallery": len(train), "num_classes": len(classes)}
        return TaskOutput(metrics=metrics, details=details, samples=samples)


@TASKS.register("ucf101_retrieval", "UCF101 video retrieval, Recall@1/5/10/20")
class UCF101Retrieval(VideoRetrieval):
    """UCF101 video retrieval, Recall@1/5/10/20."""

    meta = TaskMeta(name="ucf101_retrieval", dataset="ucf101", main_metric="R@1", sample_unit="query",
                    protocol="UCF101 split 1, test → train cosine NN retrieval (Xu et al., CVPR 2019)")
    reader = "benchmark.data.ucf101:load_ucf101"


@TASKS.register("hmdb51_retrieval", "HMDB51 video retrieval, Recall@1/5/10/20")
class HMDB51Retrieval(VideoRetrieval):
    """HMDB51 video retrieval, Recall@1/5/10/20."""

    meta = TaskMeta(name="hmdb51_retrieval", dataset="hmdb51", main_metric="R@1", sample_unit="query",
                    protocol="HMDB51 split 1, test → train cosine NN retrieval (Xu et al., CVPR 2019)")
    reader = "benchmark.data.hmdb51:load_hmdb51"
