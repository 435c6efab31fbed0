"""Why Co-Settle's projection costs DAVIS J&F on a CNN before any training, pinned.

On the 12 toy DAVIS sequences with EfficientNet-Lite0 the suite's Co-Settle reads about 0.03 J&F below
frozen, and the same at a learning rate of 1e-12: the cost is the projection's initialisation, which the
toy training does not undo. Measured over 6 projection seeds (hierarchical bootstrap over seeds and
sequences): the authors' xavier ``Linear → Tanh → LayerNorm`` costs 0.027 [0.010, 0.045]; its Linear
alone 0.020 [0.006, 0.036]; an orthogonal Linear alone 0.002 (the LayerNorm on the CNN's tokens: cosine
similarities pass it unchanged), and with the tanh and output LayerNorm 0.010 [−0.000, 0.021]. So most
of the cost is the random square matrix, which is far from orthogonal — its singular values spread from
near 0 to 2.3 times their mean — and so reweights the 112 token channels and bends the similarities
that label propagation reads; the tanh adds the rest (orthogonal minus xavier, both whole: +0.017
[−0.001, +0.035], not significant over 6 seeds). ``init: orthogonal`` is the named option.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmark.backbones import build_backbone
from benchmark.cache import install
from benchmark.stats import paired
from methods.cosettle import CoSettle
from methods.frozen import Frozen
from tests.tasks.toy_setup import toy_ctx, toy_task

SEEDS = range(6)


def test_the_projections_random_square_matrix_costs_davis_j_and_f_at_init(toy_root, small_config, tmp_path):
    backbone, task, ctx = build_backbone("efficientnet_lite0"), toy_task("davis"), toy_ctx(root := toy_root, tmp_path)
    frozen = Frozen(backbone, {})
    install(frozen, tmp_path / "features")  # one encoder pass per frame for every evaluation below
    base = task.evaluate(frozen, ctx).samples["J&F"]

    def projected(init: str, linear_only: bool = False, seeds=SEEDS) -> np.ndarray:
        """(seeds, sequences) J&F of the projection at its initialisation (its Linear alone if ``linear_only``)."""
        rows = []
        for seed in seeds:
            method = CoSettle(backbone, small_config(init=init))
            method._build_projection(seed)
            assert method.config["token_norm"] == "layernorm"  # the CNN's tokens are normalised first
            if linear_only:
                method.projection = nn.Sequential(method.projection[0])
            install(method, tmp_path / "features")
            rows.append(task.evaluate(method, toy_ctx(root, tmp_path)).samples["J&F"])
        return np.array(rows)

    weight = CoSettle(backbone, small_config(init="xavier_uniform"))
    weight._build_projection(0)
    singular = torch.linalg.svdvals(weight.projection[0].weight.detach())
    assert singular.max() / singular.min() > 20  # far from orthogonal (an orthogonal weight's ratio is 1)
    cost = paired(base, projected("xavier_uniform"), seed=0)
    assert cost.method == "hierarchical bootstrap" and cost.ci_high < 0, cost
    linear = paired(base, projected("xavier_uniform", linear_only=True), seed=0)
    assert linear.ci_high < 0, linear  # the random matrix alone, before the tanh and the output LayerNorm
    # an orthogonal matrix alone changes no cosine similarity: what is left is the LayerNorm's share
    assert abs(paired(base, projected("orthogonal", linear_only=True, seeds=[0]), seed=0).delta) < 0.005
