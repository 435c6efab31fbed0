"""Video retrieval Recall@k, as in the UCF101 / HMDB51 self-supervised retrieval protocol.

Protocol (Xu et al., "Self-supervised Spatiotemporal Learning via Video Clip Order Prediction",
CVPR 2019, ``retrieve_clips.py``; followed by VCP, PRP, CoCLR, …): each test video is a query, the
train videos are the gallery, neighbours are ranked by cosine similarity, and a query counts as a
hit at k when *any* of its k nearest train videos has the query's class. Recall@k is the fraction
of hits.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from benchmark.errors import UserError


def cosine_topk(queries: torch.Tensor, gallery: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``(Q, k)`` of the ``k`` gallery rows most cosine-similar to each query row."""
    sim = F.normalize(queries.float(), dim=1) @ F.normalize(gallery.float(), dim=1).T
    return sim.topk(min(k, gallery.shape[0]), dim=1).indices


def recall_at_k(queries: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor,
                gallery_labels: torch.Tensor, ks: Sequence[int] = (1, 5, 10, 20)) -> dict[str, float]:
    """Recall@k for each ``k`` in ``ks``: the fraction of queries with a same-class neighbour in the top k.

    Args:
        queries: ``(Q, C)`` query features (test videos).
        query_labels: ``(Q,)`` integer classes.
        gallery: ``(G, C)`` gallery features (train videos).
        gallery_labels: ``(G,)`` integer classes.
        ks: cut-offs; a ``k`` above ``G`` is evaluated with all ``G`` neighbours.

    Returns:
        ``{"R@1": …, "R@5": …}`` in [0, 1].
    """
    return {key: float(sum(col)) / len(col) for key, col in query_hits(queries, query_labels, gallery, gallery_labels, ks).items()}


def query_hits(queries: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor,
               gallery_labels: torch.Tensor, ks: Sequence[int] = (1, 5, 10, 20)) -> dict[str, list[int]]:
    """Per query, 1 if a same-class gallery item is among its k nearest, else 0: ``{"R@k": [...]}``.

    Same arguments as :func:`recall_at_k`, whose values are the means of these columns.
    """
    if queries.shape[0] == 0 or gallery.shape[0] == 0:
        raise UserError("retrieval needs at least one query (test) and one gallery (train) video: check the split files")
    if queries.shape[1] != gallery.shape[1]:
        raise UserError(f"query features have {queries.shape[1]} channels but gallery features {gallery.shape[1]}")
    top = cosine_topk(queries, gallery, max(ks))
    hits = gallery_labels.to(top.device)[top] == query_labels.to(top.device)[:, None]
    return {f"R@{k}": hits[:, :k].any(dim=1).int().tolist() for k in ks}
