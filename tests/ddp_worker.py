"""A tiny training run on the shared trainer, as one process or one rank of ``torchrun`` (tests/test_ddp.py).

``python tests/ddp_worker.py FOLDER [KILL_AT]``: trains a small regression model on fixed data with a
global batch of 8; under torchrun the process group comes from :func:`benchmark.distributed.init_from_env`.
Ranks other than 0 have every writer of the trainer replaced by one that fails, so a run that ends
proves only rank 0 wrote. ``KILL_AT`` stops every rank after that iteration's checkpoint (a kill), then trains again from
the checkpoint with a fresh model, optimizer and trainer.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from benchmark import distributed
from methods import training

N, DIM, BATCH, SEED = 16, 6, 8, 3
CFG = {"epochs": 3, "warmup_epochs": 1, "lr": 0.05, "min_lr": 0.0, "betas": (0.9, 0.95), "train_batch_size": BATCH,
       "checkpoint_every_iters": 1, "amp": False}


class Killed(Exception):
    """Raised by the after-step hook to stop a run as a kill would."""


class Net(nn.Module):
    """A small MLP, and a trainable layer its step never uses (as a skipped head: DDP must cope)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(SEED)
        self.body = nn.Sequential(nn.Linear(DIM, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 1))
        self.skipped = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def train(folder: Path, kill_at: int = 0) -> dict:
    """Train (or resume) in ``folder``; the record (rank 0's numbers on every rank)."""
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(N, DIM, generator=g)
    y = x @ torch.randn(DIM, 1, generator=g) + 0.1 * torch.randn(N, 1, generator=g)
    net = Net()

    def step(batch, rng):
        idx = torch.tensor([i for _, i in batch])
        return training.StepOutput(((net(x[idx]) - y[idx]) ** 2).mean(), {"batch_items": float(len(idx))})

    def after(it: int) -> None:
        if it == kill_at:
            raise Killed(it)

    trainer = training.Trainer(folder, net, [{"params": list(net.parameters())}], step,
                               lambda epoch, start: training.epoch_batches(N, BATCH, SEED, epoch)[start:],
                               N // BATCH, CFG, torch.device("cpu"), SEED, after_step=after)
    return trainer.fit()


def _no_write(*args, **kwargs):
    raise AssertionError(f"rank {distributed.rank()} wrote a file: only rank 0 may")


if __name__ == "__main__":
    torch.set_num_threads(1)
    distributed.init_from_env()
    if not distributed.is_main():
        training._atomic_torch_save = training._atomic_text = training.save_weights = _no_write
    try:
        train(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    except Killed:  # every rank starts again from the checkpoint, as a requeued job does
        train(Path(sys.argv[1]))
