"""Retrieval Recall@k on constructed cases with known ranks, and the task end to end on the toy suite."""
from __future__ import annotations

import pytest
import torch

from benchmark.errors import UserError
from tasks.metrics.retrieval import recall_at_k

GALLERY = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
GALLERY_LABELS = torch.tensor([0, 1, 2, 3])
# query 0: its class is the nearest; query 1: second nearest; query 2: third nearest (no ties)
QUERIES = torch.tensor([[1.0, 0.1], [1.0, 0.2], [0.2, -1.0]])
QUERY_LABELS = torch.tensor([0, 1, 2])


def test_recall_at_k_known_ranks():
    r = recall_at_k(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(1, 2, 3))
    assert r == pytest.approx({"R@1": 1 / 3, "R@2": 2 / 3, "R@3": 1.0})


def test_recall_is_cosine_not_euclidean():
    # scaling a query changes Euclidean neighbours (a long query is closest to nothing in particular)
    # but not cosine ones
    scaled = QUERIES * torch.tensor([[50.0], [0.01], [7.0]])
    r = recall_at_k(scaled, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(1, 2, 3))
    assert r == pytest.approx({"R@1": 1 / 3, "R@2": 2 / 3, "R@3": 1.0})


def test_recall_k_beyond_gallery_uses_all_and_any_same_class_hit_counts():
    gallery_labels = torch.tensor([5, 1, 5, 5])  # only gallery item 1 has class 1
    r = recall_at_k(QUERIES[1:2], QUERY_LABELS[1:2], GALLERY, gallery_labels, ks=(1, 2, 20))
    assert r == pytest.approx({"R@1": 0.0, "R@2": 1.0, "R@20": 1.0})


def test_recall_rejects_empty_and_mismatched_inputs():
    with pytest.raises(UserError):
        recall_at_k(QUERIES[:0], QUERY_LABELS[:0], GALLERY, GALLERY_LABELS)
    with pytest.raises(UserError, match="channels"):
        recall_at_k(torch.ones(2, 3), QUERY_LABELS[:2], GALLERY, GALLERY_LABELS)


def test_hmdb51_retrieval_end_to_end_on_toy(toy_root, tmp_path):
    from tests.tasks.toy_setup import check_samples, frozen_run

    task, out = frozen_run(toy_root, "hmdb51_retrieval", tmp_path)  # ks 1, 5, 10, 20, 10000 (toy_setup.QUICK)
    check_samples(task, out, out.details["num_queries"])
    r = out.metrics
    for key in r:  # every Recall@k is the mean of its per-query hits
        assert sum(out.samples[key]) / len(out.samples[key]) == pytest.approx(r[key])
    assert r["R@1"] <= r["R@5"] <= r["R@10"] <= r["R@20"] <= r["R@10000"]
    # every test class has train videos, so ranking the whole gallery always finds one
    assert r["R@10000"] == 1.0 and out.details["num_queries"] > 0 and out.details["num_gallery"] >= 5
