"""Co-Settle's training losses: the cycle-consistency walk and the separability constraint.

Both follow the authors' code line for line (Liu et al., CVPR 2026, github.com/yafeng19/Co-Settle,
``models/mae/models_mae.py``; the same functions are repeated in every ``models/*`` file):

* ``forward_asy_cycle_loss``: features of a cyclic sequence of frames, already L2-normalised, are
  average-pooled ``win_size × win_size`` (14×14 → 7×7 nodes), consecutive items give affinities
  ``A = x_i x_{i+1}^T`` (``affinity``), rows become transition matrices ``softmax(A / temp)``
  (``stoch_mat``), their product is the round-trip walk, and the loss is the cross-entropy of
  ``log(P + 1e-6)`` against the identity (each node must walk back to itself). The cycle accuracy
  is the fraction of nodes whose most likely return node is themselves. ``sim_identity`` is the
  cosine similarity between the walk and the identity matrix, which the authors log.
* ``forward_kl_loss`` / ``forward_mse_loss`` (``forward_reg_loss``): the separability constraint
  keeping the projected features' channel distribution close to the frozen ones,
  ``F.kl_div(log_softmax(proj), softmax(orig), reduction='batchmean')`` on L2-normalised features.
  ``batchmean`` divides by the first dimension (the batch), exactly as in the authors' call.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmark.errors import UserError

EPS = 1e-6  # models_mae.py: EPS = 1e-6, added before the log of the walk probabilities
REG_LOSSES = ("kl", "mse")  # main_pretrain.py: --reg_loss choices


@dataclass
class CycleOutput:
    """Result of :func:`cycle_loss`: scalar loss, cycle accuracy, and the walk's similarity to I."""

    loss: torch.Tensor
    accuracy: torch.Tensor
    sim_identity: torch.Tensor
    walk: torch.Tensor


def pool_nodes(feats: torch.Tensor, win_size: int) -> torch.Tensor:
    """``(B, T, h, w, D)`` → ``(B, T, N, D)`` nodes by ``win_size`` average pooling (``avg_pool2d``).

    As in ``forward_asy_cycle_loss``, the pooled features are not re-normalised.
    """
    b, t, h, w, d = feats.shape
    x = feats.reshape(b * t, h, w, d).permute(0, 3, 1, 2)
    x = F.avg_pool2d(x, kernel_size=win_size, stride=win_size)
    return x.flatten(2).transpose(1, 2).reshape(b, t, -1, d)


def transition_matrices(nodes: torch.Tensor, temp: float) -> list[torch.Tensor]:
    """Row-stochastic transitions between consecutive items: ``softmax(x_i x_{i+1}^T / temp)``."""
    affinity = torch.einsum("btnc,btmc->btnm", nodes[:, :-1], nodes[:, 1:])
    return [F.softmax(affinity[:, i] / temp, dim=-1) for i in range(affinity.shape[1])]


def walk_product(transitions: list[torch.Tensor]) -> torch.Tensor:
    """The round-trip walk: the product of the transition matrices in sequence order."""
    walk = transitions[0]
    for mat in transitions[1:]:
        walk = walk @ mat
    return walk


def cycle_accuracy(walk: torch.Tensor) -> torch.Tensor:
    """Fraction of nodes whose most probable end node is the node itself (``argmax == identity``)."""
    targets = torch.arange(walk.shape[-1], device=walk.device)
    return (walk.argmax(dim=-1) == targets).float().mean()


def cycle_loss(feats: torch.Tensor, temp: float = 0.03, win_size: int = 2) -> CycleOutput:
    """Cycle-consistency loss of a cyclic sequence (``forward_asy_cycle_loss``).

    Args:
        feats: ``(B, T, h, w, D)`` L2-normalised features of the sequence, e.g. ``T = 3`` for
            ``[P(f(I_t)), P(f(I_t+gap)), P(f_asy(I_t))]``; the walk goes 1→2→…→T and must come back.
        temp: softmax temperature of the transitions (``--temp 0.03`` in ``scripts/train.sh``).
        win_size: average-pooling window before the walk (``--win_size 2``, ``main_pretrain.py``).

    Returns:
        loss (mean cross-entropy against the identity), accuracy, similarity of walk and identity.
    """
    if feats.ndim != 5 or feats.shape[1] < 2:
        raise ValueError(f"cycle_loss expects (B, T>=2, h, w, D) features, got {tuple(feats.shape)}")
    if min(feats.shape[2:4]) < win_size:
        raise UserError(
            f"feature grid {tuple(feats.shape[2:4])} is smaller than the pooling window {win_size}: "
            "raise input_size or lower win_size in the method config"
        )
    nodes = pool_nodes(feats, win_size)
    walk = walk_product(transition_matrices(nodes, temp))
    logits = torch.log(walk + EPS).flatten(0, -2)
    targets = torch.arange(walk.shape[-1], device=walk.device).repeat(walk.shape[0])
    loss = F.cross_entropy(logits, targets)
    eye = torch.eye(walk.shape[-1], device=walk.device, dtype=walk.dtype).expand_as(walk)
    sim = F.cosine_similarity(walk.flatten(), eye.flatten(), dim=0)
    return CycleOutput(loss=loss, accuracy=cycle_accuracy(walk), sim_identity=sim, walk=walk)


def separability_loss(original: torch.Tensor, projected: torch.Tensor, kind: str = "kl") -> torch.Tensor:
    """Separability constraint between L2-normalised frozen and projected features (``forward_reg_loss``).

    Args:
        original: frozen encoder features, L2-normalised over channels, batch first.
        projected: projected features of the same shape, L2-normalised over channels.
        kind: ``kl`` — ``KL(softmax(original) || softmax(projected))`` over channels, summed and
            divided by the batch size (``F.kl_div(..., reduction='batchmean')``); ``mse`` — the
            mean squared error (``forward_mse_loss``).
    """
    if kind == "kl":
        return F.kl_div(F.log_softmax(projected, dim=-1), F.softmax(original, dim=-1), reduction="batchmean")
    if kind == "mse":
        return F.mse_loss(original, projected)
    raise UserError(f"reg_loss {kind!r} is unknown: use one of {', '.join(REG_LOSSES)}")
