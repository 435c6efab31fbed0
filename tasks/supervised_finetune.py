"""Supervised end-to-end fine-tuning for classification: the comparison every probe is read against.

A linear probe measures what frozen (or adapted) features already hold; the field's other number is
the encoder fine-tuned end to end on the labels (VideoMAE, AdViSe and Co-Settle all report it). Here
a copy of the method's image encoder (the method's own backbone is never touched) gets a linear head
on its tokens mean-pooled over time and space, and both train with AdamW and cross-entropy with label
smoothing, then the test clips are classified (logits averaged over ``num_clips``). The method's
adapter is not part of this model: end-to-end fine-tuning measures the encoder, which is the point of
the comparison. Training clips are the same uniform clips the probe uses (decoded once per epoch);
random clip sampling and video augmentations are left to a full recipe such as mmaction2's.
"""
from __future__ import annotations

import copy
import time
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field

from benchmark.context import RunContext
from benchmark.errors import UserError
from benchmark.data.types import LabelledVideo
from benchmark.schemas import NonNegFloat, Pos, PosFloat, Strict
from tasks.video_features import load_clips


class FineTuneConfig(Strict):
    """The ``finetune`` block of a classification task's YAML."""

    epochs: Pos
    lr: PosFloat
    weight_decay: NonNegFloat
    batch_size: Pos
    label_smoothing: Annotated[float, Field(ge=0, lt=1)]


def _logits(encoder: torch.nn.Module, head: torch.nn.Linear, clips: torch.Tensor) -> torch.Tensor:
    """``(B, T, 3, H, W)`` clips → ``(B, K)`` logits of mean-pooled tokens."""
    b, t = clips.shape[:2]
    tokens = encoder.encode(clips.flatten(0, 1))  # (B*T, h, w, C)
    return head(tokens.reshape(b, t, -1, tokens.shape[-1]).mean(dim=(1, 2)))


def finetune_classify(method: Any, train: list[LabelledVideo], test: list[LabelledVideo], num_classes: int,
                      cfg: dict[str, Any], ctx: RunContext) -> tuple[torch.Tensor, dict[str, Any]]:
    """Fine-tune a copy of ``method.backbone`` with a linear head; return test logits ``(N, K)`` and a record."""
    ft = cfg["finetune"]
    device = ctx.device
    torch.manual_seed(ctx.seed)
    encoder = copy.deepcopy(method.backbone).to(device).train().requires_grad_(True)
    head = torch.nn.Linear(encoder.dim, num_classes).to(device)
    params = [p for p in (*encoder.parameters(), *head.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=float(ft["lr"]), weight_decay=float(ft["weight_decay"]))
    batch = int(ft["batch_size"])
    steps = int(ft["epochs"]) * -(-len(train) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    g = torch.Generator().manual_seed(ctx.seed)
    curve, t0 = [], time.time()
    for epoch in range(int(ft["epochs"])):
        order = torch.randperm(len(train), generator=g).tolist()
        losses = []
        for i in range(0, len(order), batch):
            chosen = [train[j] for j in order[i : i + batch]]
            clips = torch.stack([load_clips(v.path, cfg)[0] for v in chosen]).to(device)
            labels = torch.tensor([v.label for v in chosen], device=device)
            loss = F.cross_entropy(_logits(encoder, head, clips), labels, label_smoothing=float(ft["label_smoothing"]))
            if not torch.isfinite(loss):
                raise UserError(f"supervised fine-tuning loss became {loss.item()} in epoch {epoch}: lower finetune.lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        curve.append({"epoch": epoch, "loss": sum(losses) / len(losses)})
    encoder.eval()
    with torch.no_grad():
        logits = torch.stack([_logits(encoder, head, load_clips(v.path, cfg).to(device)).mean(0).cpu() for v in test])
    record = {"curve": curve, "train_s": time.time() - t0,
              "trainable_params": sum(p.numel() for p in params)}
    return logits, record
