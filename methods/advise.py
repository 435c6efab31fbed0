"""AdViSe: a temporal module on a frozen image encoder, trained by playback-rate perception.

"Advancing Video Self-Supervised Learning via Image Foundation Models" (Wu, Huang, Liu); released
code github.com/JingwWu/advise-video-ssl. The defaults are the release's (``configs/methods/advise.yaml``
cites each constant): frozen encoder in bf16 while training (``encoder_precision``, ``TM.ENABLE_BF16``,
``models/temporal_modeling.py``: bf16 weights and inputs; here bf16 autocast, on CUDA only: CPU training
stays fp32 and the record says so; evaluation features follow the backbone's ``precision``); SFU pooling
(``spatial_pool``/``channel_pool``); a ResNet3D TMM
(:mod:`methods.advise_tmm`); 4 rate clips per video of 8 frames, stride 2, rates {1,2,4,8} ± 20 %
(:mod:`benchmark.data.rates`); a 2-layer BN MLP head on the globally pooled TMM output
(``ResNetBasicHead``); cross-entropy with smoothing 0.05; AdamW at ``base_lr × batch / 64``
(``utils/solver.py``), weight decay on every parameter; ImageNet mean/std for every encoder.

Deviations, each a named option:

* ``temporal_kernel: 3`` (the release's ResNet3D stage has ``temp_kernel_sizes=[[1]]``, so it never
  mixes frames and a rate can only be read from per-frame appearance): a deliberate fix; 1 reproduces
  the release's ResNet3D TMM. The release's ``conv3d`` TMM is 3×3×3, which kernel 3 reproduces.
* ``augment: ours``, ``normalise: backbone``, ``decay_norms: false``: this project's earlier choices;
  ``cache_tokens``: each training video encoded once, unaugmented; ``amp: true``: fp16 TMM on CUDA
  (the release trains it in float32, ``TRAIN.AMP: false``).

What the toy suite measures (README, "Measured behaviour"): the rate pretext is blind to the direction
of motion (a reversed clip has the same rate) but sees speed and smoothness; the TMM's per-frame tokens,
our extension for dense tasks, propagate DAVIS labels poorly once BatchNorm has data statistics, which
``tests/tasks/test_advise_dense.py`` shows is inherent, not a misalignment.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.backbones.base import Backbone
from benchmark.context import RunContext
from benchmark.data.rates import RateClips, imagenet_input
from benchmark.errors import UserError
from methods.advise_tmm import RateHead, build_tmm
from methods.base import Method
from methods.training import StepOutput, Trainer, checkpoint_folder, derived_seed, epoch_batches
from benchmark.registry import METHODS


def _scaled(dim: int, ratio: float) -> int:
    """Width scaled from ViT-B's 768 by ``ratio``, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(round(dim * ratio / 8)) * 8)

@METHODS.register("advise", "AdViSe-style ResNet3D temporal module trained by playback-rate perception")
class AdViSe(Method):
    """AdViSe temporal module trained by playback-rate perception."""

    name = "advise"
    version = 3  # 2: released recipe as default (lr, weight decay, augmentation, normalisation); 3: bf16 encoder on CUDA
    trains = True

    def __init__(self, backbone: Backbone, config: dict[str, Any]):
        super().__init__(backbone, config)
        cfg = self.config
        if cfg["temporal_kernel"] < 1 or cfg["temporal_kernel"] % 2 == 0:
            raise UserError(f"advise: temporal_kernel must be an odd number ≥ 1 (3 = real temporal mixing, 1 = released ResNet3D), got {cfg['temporal_kernel']}")
        self.dim_in = int(cfg["channel_pool"]) or backbone.dim
        hidden = int(cfg["hidden_dim"]) or _scaled(backbone.dim, 256 / 768)
        out = int(cfg["out_dim"]) or _scaled(backbone.dim, 512 / 768)
        spatial_kernel = 1 if cfg["spatial_pool"] == 1 else 3  # as the released code: ks = 1 on a 1×1 grid
        self.tmm, self.out_dim = build_tmm(cfg["tmm"], self.dim_in, hidden, out, int(cfg["blocks"]),
                                           int(cfg["temporal_kernel"]), spatial_kernel, int(cfg["num_heads"]))
        self.head = RateHead(self.out_dim, int(cfg["mlp_dim"]), len(cfg["rates"]))
        self.trainable_modules().to(self.device).eval()

    def _input(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames as the encoder should see them: ImageNet-normalised for every encoder (release) or its own."""
        if self.config["normalise"] == "imagenet":
            return imagenet_input(frames, *self.backbone.input_stats)
        return frames

    def spatial_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """SFU: tokens ``(N,h,w,C)`` → ``(N,h',w',C')`` with optional channel and grid pooling."""
        n, h, w, c = tokens.shape
        if self.dim_in != c:
            tokens = F.adaptive_avg_pool1d(tokens.reshape(-1, 1, c), self.dim_in).reshape(n, h, w, self.dim_in)
        p = int(self.config["spatial_pool"])
        if p and (h, w) != (p, p):
            tokens = F.adaptive_avg_pool2d(tokens.permute(0, 3, 1, 2), p).permute(0, 2, 3, 1)
        return tokens

    def temporal(self, tokens: torch.Tensor) -> torch.Tensor:
        """TMM on clips of SFU tokens ``(B,T,h,w,C)`` → temporally mixed tokens ``(B,T,h,w,C_out)``."""
        return self.tmm(tokens.permute(0, 4, 1, 2, 3).contiguous()).permute(0, 2, 3, 4, 1)

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame features from the TMM (each frame's tokens mixed with its neighbours in time)."""
        tokens = self.spatial_features(self.encode_frames(self._input(frames)))
        self.tmm.eval()
        with torch.inference_mode():
            return self.temporal(tokens[None])[0].float()

    def rate_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Rate logits for clips of SFU tokens ``(B,T,h,w,C)``: the head on the globally pooled TMM output."""
        return self.head(self.temporal(tokens).mean(dim=(1, 2, 3)))

    def trainable_modules(self) -> nn.ModuleDict:
        return nn.ModuleDict({"tmm": self.tmm, "head": self.head})

    def _encode_train(self, frames: torch.Tensor) -> torch.Tensor:
        """SFU tokens of the frozen encoder under ``no_grad`` (the TMM backpropagates into them, not through)."""
        step = int(self.config["batch_size"])
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self._bf16_encoder()):
            out = [self.backbone.encode(self._input(frames[i : i + step]).to(self.device)).float()
                   for i in range(0, frames.shape[0], step)]
        return self.spatial_features(torch.cat(out))

    def _bf16_encoder(self) -> bool:
        return self.config["encoder_precision"] == "bf16" and torch.device(self.device).type == "cuda"

    def _encoder_precision(self) -> str:
        """What the encoder trains under: bf16 where this option or the backbone's own ``precision`` asks, on CUDA."""
        cuda_bf16 = torch.device(self.device).type == "cuda" and self.backbone.amp_dtype is torch.bfloat16
        return "bf16" if self._bf16_encoder() or cuda_bf16 else "fp32"

    def _step(self, batch: list[tuple[int, int]], data: RateClips, videos: list, seed: int) -> StepOutput:
        clips, labels = zip(*(data.clips(videos[i], np.random.default_rng(derived_seed(seed, e, i))) for e, i in batch))
        logits = self.rate_logits(torch.cat(clips).to(self.device))
        target = torch.cat(labels).to(self.device)
        loss = F.cross_entropy(logits.float(), target, label_smoothing=float(self.config["label_smoothing"]))
        return StepOutput(loss, {"rate_acc": (logits.argmax(1) == target).float().mean().item()})

    def param_groups(self) -> list[dict[str, Any]]:
        """Release: one AdamW group, weight decay on every parameter (``simple_adamw`` in ``utils/solver.py``);
        ``decay_norms: false`` exempts norms and biases."""
        params = list(self.trainable_modules().parameters())
        wd = float(self.config["weight_decay"])
        if self.config["decay_norms"]:
            return [{"params": params, "weight_decay": wd}]
        return [{"params": [p for p in params if p.ndim > 1], "weight_decay": wd},
                {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]

    def fit(self, ctx: RunContext) -> dict[str, Any]:
        """Train the TMM and rate head by playback-rate perception on ``ctx.train_data`` (or reuse a checkpoint)."""
        from benchmark.data.kinetics import list_train_videos

        if ctx.train_data is None:
            raise UserError("advise trains on unlabelled videos: pass --train-data DIR (or --suite toy)")
        videos = list(list_train_videos(ctx.train_data))
        batch = int(self.config["train_batch_size"])
        cfg = {**self.config, "lr": float(self.config["base_lr"]) * batch / 64}  # utils/solver.py adjust_base_lr
        module, data = self.trainable_modules(), RateClips(self.config, self._encode_train)
        trainer = Trainer(
            checkpoint_folder(ctx, self.name, self.backbone, cfg, videos), module, self.param_groups(),
            step=lambda b, _g: self._step(b, data, videos, ctx.seed),
            loader=lambda epoch, start: epoch_batches(len(videos), batch, ctx.seed, epoch)[start:],
            iters_per_epoch=len(videos) // batch, cfg=cfg, device=self.device, seed=ctx.seed, progress=ctx.progress,
        )
        try:
            return {**trainer.fit(), "encoder_precision": self._encoder_precision()}
        finally:
            module.eval()  # evaluation uses BatchNorm's running statistics
