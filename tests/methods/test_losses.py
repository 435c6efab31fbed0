"""Co-Settle's losses on hand-checkable cases (methods/losses.py)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.errors import UserError
from methods.losses import EPS, cycle_loss, pool_nodes, separability_loss


def one_hot_grid(h: int, w: int, dim: int, block: int = 1) -> torch.Tensor:
    """``(h, w, dim)`` grid whose ``block × block`` cells each hold a distinct unit basis vector."""
    ids = torch.arange((h // block) * (w // block)).reshape(h // block, w // block)
    ids = ids.repeat_interleave(block, 0).repeat_interleave(block, 1)
    return F.one_hot(ids, dim).float()


def sequence(*grids: torch.Tensor) -> torch.Tensor:
    return torch.stack(grids).unsqueeze(0)  # (1, T, h, w, D)


def test_identical_frames_walk_home_with_loss_at_its_floor():
    g = one_hot_grid(8, 8, 16, block=2)  # 2x2 pooling keeps each node a unit vector
    out = cycle_loss(sequence(g, g, g), temp=0.03, win_size=2)
    assert out.accuracy.item() == 1.0
    # every transition is softmax(I / 0.03): the walk is the identity up to e^-33. Cross-entropy
    # re-normalises log(P + EPS) over the 16 nodes, so the floor is -log((1 + EPS) / (1 + 16 EPS))
    assert out.loss.item() == pytest.approx(-math.log((1 + EPS) / (1 + 16 * EPS)), rel=1e-2)
    assert out.sim_identity.item() == pytest.approx(1.0, abs=1e-6)


def test_loss_matches_the_closed_form_at_a_soft_temperature():
    n, temp = 16, 1.0
    g = one_hot_grid(4, 4, n)
    out = cycle_loss(sequence(g, g, g), temp=temp, win_size=1)
    p = math.exp(1 / temp) / (math.exp(1 / temp) + n - 1)  # softmax of a one-hot row
    q = 1 / (math.exp(1 / temp) + n - 1)
    diag = p * p + (n - 1) * q * q  # (S @ S)_ii
    # rows of the walk sum to 1, so cross-entropy's softmax divides by 1 + n EPS
    assert out.loss.item() == pytest.approx(-math.log((diag + EPS) / (1 + n * EPS)), rel=1e-5)
    assert out.accuracy.item() == 1.0


@pytest.mark.parametrize("n_fixed", [0, 4, 10])
def test_shuffled_return_frame_lowers_accuracy_to_the_fixed_points(n_fixed):
    g = one_hot_grid(4, 4, 16)
    perm = torch.arange(16)
    moved = perm[n_fixed:]
    perm[n_fixed:] = moved.roll(1)  # a cycle over the rest: no other fixed point
    shuffled = g.reshape(16, 16)[perm].reshape(4, 4, 16)
    out = cycle_loss(sequence(g, g, shuffled), temp=0.03, win_size=1)
    assert out.accuracy.item() == pytest.approx(n_fixed / 16)
    clean = cycle_loss(sequence(g, g, g), temp=0.03, win_size=1)
    assert out.loss.item() > clean.loss.item() + 5


def test_shuffling_the_middle_frame_is_harmless_the_walk_comes_back():
    g = one_hot_grid(4, 4, 16)
    shuffled = g.reshape(16, 16)[torch.randperm(16, generator=torch.Generator().manual_seed(0))].reshape(4, 4, 16)
    assert cycle_loss(sequence(g, shuffled, g), temp=0.03, win_size=1).accuracy.item() == 1.0


def test_pool_nodes_averages_2x2_windows_in_row_major_order():
    x = torch.arange(16.0).reshape(1, 1, 4, 4, 1)
    nodes = pool_nodes(x, 2)
    assert nodes.shape == (1, 1, 4, 1)
    assert nodes.flatten().tolist() == [2.5, 4.5, 10.5, 12.5]


def test_grid_smaller_than_window_is_a_user_error():
    with pytest.raises(UserError, match="win_size"):
        cycle_loss(torch.rand(1, 3, 1, 1, 8), win_size=2)


def test_kl_is_zero_for_identical_features_and_matches_the_formula_otherwise():
    gen = torch.Generator().manual_seed(0)
    orig = F.normalize(torch.randn(3, 3, 5, 8, generator=gen), dim=-1)
    proj = F.normalize(torch.randn(3, 3, 5, 8, generator=gen), dim=-1)
    assert separability_loss(orig, orig).item() == pytest.approx(0.0, abs=1e-6)
    assert separability_loss(orig, proj).item() > 1e-3
    p, q = orig.softmax(-1), proj.softmax(-1)
    expected = (p * (p.log() - q.log())).sum() / orig.shape[0]  # batchmean: divided by the batch only
    assert separability_loss(orig, proj).item() == pytest.approx(expected.item(), rel=1e-5)


def test_mse_option_and_unknown_kind():
    a, b = torch.zeros(2, 4), torch.ones(2, 4)
    assert separability_loss(a, b, "mse").item() == pytest.approx(1.0)
    with pytest.raises(UserError, match="kl, mse"):
        separability_loss(a, b, "l1")
