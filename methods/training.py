"""Shared training machinery for every method that trains (Co-Settle, fine-tuning, ADVISE).

What it guarantees, so a method only writes its forward step:

* **Content-addressed checkpoints**: ``checkpoint_root/<method>/<backbone>/<key>`` where the key
  hashes the backbone name, its ``weights_id``, the resolved training config, the seed and the
  training-data listing. A finished folder (``weights.safetensors`` + ``record.json``) is reused on
  rerun; an unfinished one (``state.pt``) resumes where it stopped.
* **Resumable, reproducible runs**: model/optimizer/AMP-scaler state, epoch, iteration, the curve
  and the torch RNG are saved atomically (temp file + ``os.replace``) every
  ``checkpoint_every_iters`` iterations and at each epoch's end, as plain tensors that load with
  ``weights_only=True``. Every random draw of the data pipeline and the step comes from generators
  seeded by ``(seed, epoch, index)`` or ``(seed, iteration)``, so a run killed mid-epoch and resumed
  ends with the same weights as one that never stopped.
* **The MAE schedule**: AdamW, ``lr = blr × batch / 256``, linear warm-up then half-cycle cosine
  updated per iteration (MAE ``util/lr_sched.py: adjust_learning_rate``, which Co-Settle's
  ``engine_pretrain.py`` calls with ``data_iter_step / len(data_loader) + epoch``), implemented by
  timm's ``CosineLRScheduler`` (``warmup_prefix=True``, ``t_in_epochs=False``; ``lr_scale`` groups
  for layer-wise decay are honoured by timm as by MAE).
* **Safety**: a non-finite loss stops training with one-line :class:`UserError` and keeps the last
  good checkpoint (``engine_pretrain.py`` stops on ``not math.isfinite(loss_value)`` too).
  AMP (fp16 autocast + ``GradScaler``, the authors' ``NativeScaler``) only on CUDA, one autocast
  context around the whole step (every encoder call and loss in it), as ``engine_pretrain.py`` does.
* **One run on several processes** (DDP; :mod:`benchmark.distributed`): each rank takes its share of
  every global batch and DDP averages gradients, so a step equals the one-process step; lr scales with
  the recipe's global batch; logged scalars are rank means; only rank 0 writes (then a barrier); every
  rank resumes from the same ``state.pt``. Batch-coupled terms (BatchNorm) see one rank's share.
* **A training record** for the result store: trainable parameters, peak memory
  (``torch.cuda.max_memory_allocated`` on GPU, ``ru_maxrss`` of the process on CPU), train wall
  time, and the curve (loss, cycle accuracy, lr per iteration; means per epoch).
"""
from __future__ import annotations

import json
import math
import os
import pickle
import resource
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from timm.scheduler import CosineLRScheduler
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from benchmark import distributed
from benchmark.config import config_hash
from benchmark.context import RunContext
from benchmark.data.kinetics import list_train_videos
from benchmark.errors import UserError

TRAINER_VERSION = 1  # bump when a change here changes what a checkpoint contains
STATE_FILE, WEIGHTS_FILE, RECORD_FILE, KEY_FILE = "state.pt", "weights.safetensors", "record.json", "key.json"
# Config keys that change how a run is executed or evaluated but not what it learns.
NON_TRAINING_KEYS = ("batch_size", "num_workers", "checkpoint_every_iters")


def derived_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (``numpy.random.SeedSequence``), stable across runs."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def generator(*parts: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``parts`` (seed, epoch, index...)."""
    return torch.Generator().manual_seed(derived_seed(*parts))


def _data_listing(videos: Sequence[Path], train_data: Path) -> list[list[Any]]:
    """``[path relative to the data folder (or list file's folder), file count, bytes]`` per video."""
    root = train_data if train_data.is_dir() else train_data.parent
    out = []
    for v in videos:
        files = sorted(v.iterdir()) if v.is_dir() else [v]
        out.append([os.path.relpath(v, root), len(files), sum(f.stat().st_size for f in files)])
    return out


def checkpoint_folder(
    ctx: RunContext, method: str, backbone: Any, config: dict[str, Any], videos: Sequence[Path]
) -> Path:
    """``checkpoint_root/<method>/<backbone>/<key>``; the key also goes to ``key.json`` in the folder.

    The key covers everything that changes the trained weights: backbone name, weights and token options,
    the training config (without :data:`NON_TRAINING_KEYS`), the seed, and the training videos
    (relative path, file count, byte size; not modification times, so a copied data set still hits).
    """
    root = Path(ctx.checkpoint_root) if ctx.checkpoint_root else Path(ctx.work_dir) / "checkpoints"
    key_obj = {
        "trainer_version": TRAINER_VERSION,
        "method": method,
        "backbone": [backbone.meta.name, backbone.weights_id, backbone.input_norm, str(backbone.amp_dtype),
                     getattr(backbone, "pos_interp", None)],  # name, weights, and the options that change its tokens
        "config": {k: v for k, v in config.items() if k not in NON_TRAINING_KEYS},
        "seed": ctx.seed,
        "data": _data_listing(videos, Path(ctx.train_data)) if ctx.train_data else [],
    }
    folder = root / method / backbone.meta.name / config_hash(key_obj)
    folder.mkdir(parents=True, exist_ok=True)
    if distributed.is_main() and not (folder / KEY_FILE).exists():
        _atomic_text(folder / KEY_FILE, json.dumps(key_obj, indent=1))
    return folder


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_torch_save(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_weights(path: Path, module: nn.Module) -> None:
    """Write ``module``'s state dict as safetensors, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(tmp))
    os.replace(tmp, path)


def load_weights(path: Path, module: nn.Module) -> None:
    """Load safetensors weights into ``module`` (strict: a mismatch means a stale checkpoint)."""
    device = next(iter(module.state_dict().values())).device
    module.load_state_dict(load_file(str(path), device=str(device)))


def batch_lr(cfg: dict[str, Any]) -> float:
    """Absolute lr: ``lr`` if given, else ``blr × train_batch_size / 256`` (``main_pretrain.py``)."""
    if cfg.get("lr") is not None:
        return float(cfg["lr"])
    return float(cfg["blr"]) * int(cfg["train_batch_size"]) / 256


def build_optimizer(param_groups: list[dict[str, Any]], cfg: dict[str, Any]) -> torch.optim.AdamW:
    """AdamW with the authors' betas (``torch.optim.AdamW(param_groups, lr, betas=(0.9, 0.95))``)."""
    return torch.optim.AdamW(param_groups, lr=batch_lr(cfg), betas=tuple(cfg["betas"]))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: dict[str, Any], iters_per_epoch: int) -> CosineLRScheduler:
    """Per-iteration warm-up + half-cycle cosine, equal to MAE's ``adjust_learning_rate``.

    MAE: ``lr·e/w`` for fractional epoch ``e < w``, then ``min + (lr-min)·½(1+cos(π(e-w)/(E-w)))``.
    With ``e = it / iters_per_epoch`` this is timm's scheduler stepped per update with
    ``warmup_t = w·iters_per_epoch`` and ``t_initial = (E-w)·iters_per_epoch``.
    """
    epochs, warmup = int(cfg["epochs"]), int(cfg["warmup_epochs"])
    if not 0 <= warmup < epochs:
        raise UserError(f"warmup_epochs={warmup} must be at least 0 and below epochs={epochs}: change one of them")
    for group in optimizer.param_groups:  # timm reads the peak lr from here; lr_scale still applies per group
        group["initial_lr"] = batch_lr(cfg)
    return CosineLRScheduler(
        optimizer,
        t_initial=(epochs - warmup) * iters_per_epoch,
        lr_min=float(cfg["min_lr"]),
        warmup_t=warmup * iters_per_epoch,
        warmup_lr_init=0.0,
        warmup_prefix=True,
        t_in_epochs=False,
    )


def epoch_batches(n_items: int, batch_size: int, seed: int, epoch: int) -> list[list[tuple[int, int]]]:
    """Shuffled ``(epoch, index)`` batches for one epoch, last partial batch dropped (``drop_last=True``).

    The permutation depends only on ``(seed, epoch)`` (as ``DistributedSampler.set_epoch`` does).
    ``batch_size`` is the global batch: under DDP each rank gets its contiguous ``batch_size / world``
    share of every batch, so the ranks together see exactly the one-process batches.
    """
    world, rank = distributed.world_size(), distributed.rank()
    if batch_size % world:
        raise UserError(f"train_batch_size={batch_size} does not split over {world} processes: choose a multiple of {world}")
    perm = torch.randperm(n_items, generator=generator(seed, epoch)).tolist()
    n, share = n_items // batch_size, batch_size // world
    return [[(epoch, i) for i in perm[b * batch_size + rank * share : b * batch_size + (rank + 1) * share]] for b in range(n)]


@dataclass
class StepOutput:
    """What a method's training step returns: the loss to minimise and scalars to log."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


def peak_memory(device: torch.device) -> dict[str, Any]:
    """Peak memory of training: CUDA allocator peak on GPU, the process's max RSS on CPU."""
    if device.type == "cuda":
        return {"peak_memory_bytes": int(torch.cuda.max_memory_allocated(device)), "peak_memory_kind": "cuda_max_memory_allocated"}
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"peak_memory_bytes": int(rss_kib) * 1024, "peak_memory_kind": "cpu_process_max_rss"}


class Trainer:
    """Runs (or resumes, or reuses) one training job and returns its record.

    Args:
        folder: the content-addressed checkpoint folder (:func:`checkpoint_folder`).
        module: everything that trains (saved as ``weights.safetensors``).
        param_groups: optimizer groups over ``module``'s trainable parameters.
        step: ``step(batch, rng) -> StepOutput``; ``rng`` is a generator seeded by the iteration.
        loader: ``loader(epoch, start_iteration)`` yields that epoch's batches from ``start_iteration``.
        iters_per_epoch: batches per epoch.
        cfg: the method config (epochs, warmup_epochs, blr/lr, min_lr, betas, train_batch_size,
            amp, checkpoint_every_iters).
        device, seed, progress: from the run context.
        after_step: test hook called with the global iteration after each saved step (a test
            raises from it to simulate a kill).
    """

    def __init__(
        self,
        folder: Path,
        module: nn.Module,
        param_groups: list[dict[str, Any]],
        step: Callable[[Any, torch.Generator], StepOutput],
        loader: Callable[[int, int], Iterable[Any]],
        iters_per_epoch: int,
        cfg: dict[str, Any],
        device: torch.device,
        seed: int,
        progress: bool = False,
        after_step: Callable[[int], None] | None = None,
    ):
        if iters_per_epoch < 1:
            raise UserError(
                f"no full training batch: train_batch_size={cfg['train_batch_size']} exceeds the number of "
                "training videos; lower train_batch_size or add videos to --train-data"
            )
        self.folder, self.module, self.step, self.loader = Path(folder), module, step, loader
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ipe, self.cfg, self.device, self.seed = iters_per_epoch, cfg, torch.device(device), seed
        self.progress, self.after_step = progress, after_step
        self.optimizer = build_optimizer(param_groups, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, iters_per_epoch)
        self.amp = bool(cfg.get("amp", True)) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    @property
    def weights_path(self) -> Path:
        return self.folder / WEIGHTS_FILE

    def finished_record(self) -> dict[str, Any] | None:
        """The stored record if this folder holds a finished run (weights loaded into the module)."""
        rec = self.folder / RECORD_FILE
        if not (rec.is_file() and self.weights_path.is_file()):
            return None
        load_weights(self.weights_path, self.module)
        return {**json.loads(rec.read_text()), "reused": True}

    def _save_state(self, epoch: int, iteration: int, curve: list[dict[str, float]], seconds: float) -> None:
        """Rank 0 writes ``state.pt``; every rank waits for it (the state is the same on every rank)."""
        if not distributed.is_main():
            distributed.barrier()
            return
        state = {
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "iteration": iteration,
            "curve": curve,
            "train_seconds": seconds,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        _atomic_torch_save(self.folder / STATE_FILE, state)
        distributed.barrier()

    def _load_state(self) -> dict[str, Any] | None:
        path = self.folder / STATE_FILE
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except (RuntimeError, pickle.UnpicklingError, EOFError, OSError) as e:  # truncated or foreign file
            raise UserError(f"cannot resume from {path} ({type(e).__name__}): delete it to restart training") from None
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        return state

    def fit(self) -> dict[str, Any]:
        """Train to the end (or reuse a finished run) and return the training record."""
        done = self.finished_record()
        if done is not None:
            return done
        state = self._load_state()
        epoch, it = (state["epoch"], state["iteration"]) if state else (0, 0)
        curve: list[dict[str, float]] = list(state["curve"]) if state else []
        seconds = float(state["train_seconds"]) if state else 0.0
        resumed_from = epoch * self.ipe + it if state else None
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        every = max(1, int(self.cfg.get("checkpoint_every_iters", 50)))
        epochs = int(self.cfg["epochs"])
        self.module.train()
        forward = distributed.step_module(self.module, self.step)
        bar = tqdm(total=epochs * self.ipe, initial=epoch * self.ipe + it,
                   disable=not (self.progress and distributed.is_main()), desc="train")
        while epoch < epochs:
            tick = time.perf_counter()  # wall time of the loop, data loading included
            for batch in self.loader(epoch, it):
                g = epoch * self.ipe + it
                self.scheduler.step_update(g)
                with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
                    loss, metrics = forward(batch, generator(self.seed, 1, g))
                loss_value, metrics = distributed.rank_mean(loss, metrics)
                if not math.isfinite(loss_value):
                    raise UserError(
                        f"training loss became {loss_value} at epoch {epoch} iteration {it}; the last good checkpoint "
                        f"is kept in {self.folder}: lower the learning rate (blr) or check the training videos"
                    )
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                it += 1
                curve.append({"epoch": epoch + it / self.ipe, "iteration": g + 1, "loss": loss_value,
                              "lr": self.optimizer.param_groups[0]["lr"], **metrics})
                bar.update(1)
                seconds, tick = seconds + time.perf_counter() - tick, time.perf_counter()
                if it == self.ipe or (g + 1) % every == 0:
                    self._save_state(*((epoch + 1, 0) if it == self.ipe else (epoch, it)), curve, seconds)
                if self.after_step is not None:
                    self.after_step(g + 1)
            if it != self.ipe:
                raise RuntimeError(f"the loader of epoch {epoch} yielded {it} of {self.ipe} batches")
            epoch, it = epoch + 1, 0
        bar.close()
        record = {
            "checkpoint": str(self.folder),
            "trainable_params": sum(p.numel() for p in self.module.parameters() if p.requires_grad),
            **peak_memory(self.device),
            "train_seconds": seconds,
            "epochs": epochs,
            "iterations": epochs * self.ipe,
            "iters_per_epoch": self.ipe,
            "world_size": distributed.world_size(),
            "amp": self.amp,
            "step_precision": "fp16-autocast" if self.amp else "fp32",
            "resumed_from_iteration": resumed_from,
            "curve": curve,
            "epoch_curve": epoch_means(curve),
        }
        if distributed.is_main():
            save_weights(self.weights_path, self.module)
            _atomic_text(self.folder / RECORD_FILE, json.dumps(record, indent=1))
        distributed.barrier()
        return {**record, "reused": False}


def epoch_means(curve: list[dict[str, float]]) -> list[dict[str, float]]:
    """Per-epoch means of every logged scalar (the authors' ``metric_logger`` global averages)."""
    by_epoch: dict[int, list[dict[str, float]]] = {}
    for row in curve:
        by_epoch.setdefault(math.ceil(row["epoch"]) - 1, []).append(row)
    out = []
    for ep, rows in sorted(by_epoch.items()):
        keys = [k for k in rows[0] if k not in ("epoch", "iteration")]
        out.append({"epoch": ep, **{k: float(np.mean([r[k] for r in rows])) for k in keys}})
    return out


def training_videos(ctx: RunContext) -> list[Path]:
    """The videos under ``--train-data`` (video files or frame folders)."""
    if ctx.train_data is None:
        raise UserError("this method trains on unlabelled videos: pass --train-data DIR (or --suite toy)")
    return list(list_train_videos(Path(ctx.train_data)))


def fit_on_videos(ctx: RunContext, method: str, backbone: Any, cfg: dict[str, Any], videos: Sequence[Path],
                  data: Dataset, module: nn.Module, param_groups: list[dict[str, Any]],
                  step: Callable[[Any, torch.Generator], StepOutput], device: torch.device) -> dict[str, Any]:
    """Train ``module`` on ``data`` (indexed by ``(epoch, video index)``) and return the record.

    Checkpoints under :func:`checkpoint_folder`; batches from :func:`epoch_batches` with
    ``cfg["train_batch_size"]`` and ``cfg["num_workers"]``. ``ctx.extra["after_train_step"]``, if
    set, is the trainer's ``after_step`` hook (tests raise from it to simulate a kill).
    """
    folder = checkpoint_folder(ctx, method, backbone, cfg, videos)
    bs, workers = int(cfg["train_batch_size"]), int(cfg["num_workers"])

    def loader(epoch: int, start: int) -> DataLoader:
        return DataLoader(data, batch_sampler=epoch_batches(len(data), bs, ctx.seed, epoch)[start:], num_workers=workers)

    trainer = Trainer(folder, module, param_groups, step, loader, len(videos) // bs, cfg, device,
                      ctx.seed, ctx.progress, after_step=ctx.extra.get("after_train_step"))
    return trainer.fit()
