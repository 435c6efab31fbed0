"""Co-Settle diagnostics on constructed features with hand-computed answers."""
from __future__ import annotations

import math

import pytest
import torch

from tasks.tradeoff import cycle_accuracy, diameters, effective_rank, intra_distance


def test_intra_distance_zero_for_static_video():
    f = torch.randn(1, 6, 5).repeat(10, 1, 1)
    assert float(intra_distance(f, edge_skip=3, fraction=0.5)) == 0.0


def test_intra_distance_is_mean_of_smallest_half():
    # 4 patches far apart on a line; each frame shifts patch i by d_i along a second axis.
    base = torch.tensor([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [300.0, 0.0]])
    shift = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, 4.0]])
    frames = torch.stack([base + t * shift for t in range(6)])
    # nearest neighbour of patch i in the next frame is itself moved by |d_i|; smallest half: 1 and 2 -> 1.5
    assert float(intra_distance(frames, edge_skip=1, fraction=0.5)) == pytest.approx(1.5)


def test_intra_distance_needs_frames():
    from benchmark.errors import UserError

    with pytest.raises(UserError, match="more than 7 frames"):
        intra_distance(torch.zeros(7, 4, 2), edge_skip=3, fraction=0.5)


def test_diameters_quantile_and_closest_fraction():
    pts = torch.tensor([[-1.0], [1.0], [-3.0], [3.0]])  # centre 0, distances 1, 1, 3, 3
    assert diameters(pts, [100])[100] == pytest.approx(6.0)
    assert diameters(pts, [50])[50] == pytest.approx(2 * 2.0)  # torch.quantile interpolates between 1 and 3
    assert diameters(pts, [50], closest_fraction=True)[50] == pytest.approx(2.0)  # farthest of the closest half


def test_cycle_accuracy_perfect_on_static_distinct_nodes_and_lower_when_shuffled():
    torch.manual_seed(0)
    grid = torch.randn(1, 4, 4, 32).repeat(10, 1, 1, 1)
    pairs = [[0.25, 0.4], [0.55, 0.7]]
    assert cycle_accuracy(grid, pairs, 0.03, pool=2, l2=True) == 1.0
    noisy = grid + 3.0 * torch.randn_like(grid)
    assert cycle_accuracy(noisy, pairs, 0.03, pool=2, l2=True) < 1.0


def test_effective_rank_extremes():
    assert effective_rank(torch.eye(4)) == pytest.approx(1.0)
    rank1 = torch.ones(6, 4)
    assert effective_rank(rank1) == pytest.approx(1 / 4, rel=1e-3)
    assert math.isfinite(effective_rank(torch.randn(50, 8)))
