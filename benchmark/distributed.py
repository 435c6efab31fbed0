"""One training job on several processes (torch DistributedDataParallel), however it was launched.

* ``torchrun --nproc_per_node N -m benchmark.cli run ...`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``:
  the process group is initialised from them (``env://``).
* A submitit Slurm job with ``tasks_per_node > 1`` (``slurm.tasks_per_node``): the dinov2 pattern,
  ``submitit.helpers.TorchDistributedEnvironment().export()`` (which also gives each task the one GPU of
  its local rank through ``CUDA_VISIBLE_DEVICES``), then ``env://``.

The backend is NCCL where CUDA is visible and gloo on CPU. Everything else in the project asks only
:func:`rank`, :func:`world_size` and :func:`is_main`, which are 0, 1 and True in a single process.
"""
from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from benchmark.errors import UserError


def _dist():
    return torch.distributed if torch.distributed.is_available() else None


def active() -> bool:
    """True where a process group with more than one process is running."""
    dist = _dist()
    return dist is not None and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return _dist().get_rank() if active() else 0


def world_size() -> int:
    return _dist().get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes checkpoints and results."""
    return rank() == 0


def barrier() -> None:
    if active():
        _dist().barrier()


def _submitit_tasks() -> int:
    """Tasks of the submitit job this process runs in (1 outside one)."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):  # submitit's JobEnvironment() raises outside a job
        return 1
    from submitit import JobEnvironment

    return JobEnvironment().num_tasks


def init_from_env() -> bool:
    """Initialise the process group when launched as several processes; True where it is running.

    Idempotent, so a sweep's job (which needs its rank before it takes the job lock) and the runner may
    both call it.
    """
    dist = _dist()
    if dist is None or dist.is_initialized():
        return active()
    exported = "RANK" not in os.environ and _submitit_tasks() > 1
    if exported:  # before any CUDA call: it narrows CUDA_VISIBLE_DEVICES to the task's own GPU
        from submitit.helpers import TorchDistributedEnvironment

        TorchDistributedEnvironment().export()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if exported and torch.cuda.device_count() == 1:
            local = 0  # the one GPU submitit left visible to this task
        if local >= torch.cuda.device_count():
            raise UserError(f"local rank {local} has no GPU ({torch.cuda.device_count()} visible): start one process "
                            "per GPU (torchrun --nproc_per_node, slurm.tasks_per_node equal to slurm.gpus_per_node)")
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo", init_method="env://")
    atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return active()


class _StepModule(nn.Module):
    """The method's step as a module's ``forward``: DDP synchronises gradients only for forwards run
    through its wrapper, and a method's step calls its encoder and heads itself."""

    def __init__(self, module: nn.Module, step: Callable[[Any, torch.Generator], Any]):
        super().__init__()
        self.module, self.step = module, step

    def forward(self, batch: Any, rng: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        out = self.step(batch, rng)
        return out.loss, out.metrics


def rank_mean(loss: torch.Tensor, metrics: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The logged loss and scalars averaged over ranks (one all-reduce); as given in a single process."""
    values = torch.tensor([float(loss.detach()), *map(float, metrics.values())], dtype=torch.float64, device=loss.device)
    if active():
        torch.distributed.all_reduce(values)
    values = (values / world_size()).tolist()
    return values[0], dict(zip(metrics, values[1:]))


def step_module(module: nn.Module, step: Callable[[Any, torch.Generator], Any]) -> nn.Module:
    """``step`` as a module over ``module``'s parameters, wrapped in DDP where a process group runs.

    ``static_graph``: a method's step uses the same parameters at every iteration, and a trainable
    parameter it never uses (a head the step skips) is found once, not searched for at every step as
    ``find_unused_parameters`` would.
    """
    forward = _StepModule(module, step)
    return nn.parallel.DistributedDataParallel(forward, static_graph=True) if active() else forward
