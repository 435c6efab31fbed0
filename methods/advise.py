"""AdViSe-style temporal module on a frozen image encoder, trained by playback-rate perception.

Follows "Advancing Video Self-Supervised Learning via Image Foundation Models" (Wu, Huang, Liu) and
its released code (github.com/JingwWu/advise-video-ssl: ``models/temporal_modeling.py``,
``configs/pretrain/AdViSe.yaml``, ``datasets/sampling.py``):

* the image encoder stays frozen and runs without gradients;
* Spatial Feature Utilisation (SFU): optional adaptive average pooling of the token grid
  (``spatial_pool``) and of the channels (``channel_pool``), as ``TM.SPATIAL_POOL_DIM`` /
  ``TM.CHANNEL_POOL_DIM``;
* a trainable Temporal Modelling Module (TMM): a stage of ResNet3D bottleneck blocks (4 blocks,
  768→256→512 for ViT-B; here hidden = dim/3 and out = 2·dim/3 unless set), or the released code's
  other types ``conv3d`` (two 3-D convolutions with SiLU) and ``transformer`` (pre-norm encoder layers
  over all space-time tokens);
* the pretext: each of 4 clips per video (8 frames, stride 2) is played at a rate drawn from {1,2,4,8}
  with ±20 % jitter, and a 2-layer MLP head (hidden 1024, BatchNorm) on the pooled TMM output
  predicts the rate; cross-entropy with label smoothing 0.05, AdamW lr 1e-3, warm-up + cosine.

Deviations from the released code, each a named option:

* ``temporal_kernel`` (default 3): the released config builds the ResNet3D stage with
  ``temp_kernel_sizes=[[1]]``, i.e. 1×1×1 / 1×3×3 kernels only, so its "temporal" module never mixes
  frames and the rate can only be read from per-frame appearance. We use a real 3×1×1 temporal kernel
  in each block's first convolution (as I3D/SlowFast bottlenecks do); ``temporal_kernel: 1``
  reproduces the released behaviour.
* The released ``TemporalModelingSampling`` returns ``None`` (it never returns its clips); the
  pretext sampler used here is ``SpeedSampling`` + ``SpeedStampsGenerator``: one rate per clip, frame
  stamps ``linspace(s, s + 8·2·rate·jitter, 8, endpoint=False) mod n`` from a random start ``s``.
* ``transformer`` TMM: the released ``tfmer_enc`` layer has no positional encoding and so cannot see
  frame order; we add a fixed sinusoidal temporal encoding before the layers.
* ``cache_tokens``: encoder tokens of every training video are computed once (centre crop, no
  augmentation) and clips are sampled from them — exact for a frozen encoder except that the clip
  augmentation (random resized crop, colour jitter, grayscale) is skipped. Off by default.

Why the bottleneck block is written here rather than taken from mmaction2: mmaction2 1.2.0's
``Bottleneck3d`` lives in ``mmaction.models.backbones.resnet3d``, and ``import mmaction.models`` fails
on the PyPI release (its ``localizers/drn`` folder is missing, upstream issue #2714); it also needs
mmcv's ``ConvModule`` builders. The block below is the same structure (SlowFast's
``BottleneckTransform``: kt×1×1 → 1×3×3 → 1×1×1 with BatchNorm, projection shortcut when the width
changes) in 30 lines of torch.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.backbones.base import Backbone
from benchmark.context import RunContext
from benchmark.errors import UserError
from methods.base import Method
from methods.training import StepOutput, Trainer, checkpoint_folder, derived_seed, epoch_batches
from benchmark.data.sampling import rate_clip
from benchmark.data.video import centre_crop, read_video, to_tensor, video_length

TMM_TYPES = ("resnet3d", "conv3d", "transformer")


class Bottleneck3d(nn.Module):
    """ResNet3D bottleneck: kt×1×1 conv → 1×3×3 conv → 1×1×1 conv, each with BatchNorm.

    The temporal kernel sits in the first convolution, as in SlowFast's ``BottleneckTransform`` and
    mmaction2's inflated ``Bottleneck3d`` (``inflate_style='3x1x1'``).
    """

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, temporal_kernel: int):
        super().__init__()
        kt = temporal_kernel
        self.a = nn.Conv3d(dim_in, dim_inner, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.a_bn = nn.BatchNorm3d(dim_inner)
        self.b = nn.Conv3d(dim_inner, dim_inner, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.b_bn = nn.BatchNorm3d(dim_inner)
        self.c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.c_bn = nn.BatchNorm3d(dim_out)
        self.shortcut = (
            nn.Sequential(nn.Conv3d(dim_in, dim_out, 1, bias=False), nn.BatchNorm3d(dim_out))
            if dim_in != dim_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.a_bn(self.a(x)))
        y = F.relu(self.b_bn(self.b(y)))
        y = self.c_bn(self.c(y))
        return F.relu(y + self.shortcut(x))


class SpaceTimeTransformer(nn.Module):
    """Pre-norm transformer encoder layers over all T·h·w tokens, with a sinusoidal time encoding."""

    def __init__(self, dim: int, hidden: int, blocks: int, heads: int):
        super().__init__()
        layer = nn.TransformerEncoderLayer(dim, heads, hidden, dropout=0.1, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.dim = dim

    def time_encoding(self, t: int, device: torch.device) -> torch.Tensor:
        pos = torch.arange(t, device=device, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, self.dim, 2, device=device) * (-math.log(10000.0) / self.dim))
        enc = torch.zeros(t, self.dim, device=device)
        enc[:, 0::2] = torch.sin(pos * freq)
        enc[:, 1::2] = torch.cos(pos * freq)[:, : self.dim // 2]
        return enc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        x = x + self.time_encoding(t, x.device).T[None, :, :, None, None]
        y = self.layers(x.flatten(2).transpose(1, 2))
        return y.transpose(1, 2).reshape(b, c, t, h, w)


def build_tmm(kind: str, dim_in: int, hidden: int, dim_out: int, blocks: int, temporal_kernel: int,
              spatial_kernel: int, heads: int) -> tuple[nn.Module, int]:
    """The temporal module of type ``kind`` and its output width (``load_temporal_model`` in the code)."""
    if kind == "resnet3d":
        layers = [Bottleneck3d(dim_in if i == 0 else dim_out, hidden, dim_out, temporal_kernel) for i in range(blocks)]
        return nn.Sequential(*layers), dim_out
    if kind == "conv3d":
        k = (temporal_kernel, spatial_kernel, spatial_kernel)
        pad = tuple(s // 2 for s in k)
        return nn.Sequential(nn.Conv3d(dim_in, hidden, k, padding=pad), nn.SiLU(), nn.Conv3d(hidden, dim_out, k, padding=pad)), dim_out
    if kind == "transformer":
        if dim_in % heads:
            raise UserError(f"advise: num_heads={heads} does not divide the token width {dim_in}; pick a divisor of {dim_in}")
        return SpaceTimeTransformer(dim_in, hidden, blocks, heads), dim_in
    raise UserError(f"advise: unknown tmm {kind!r}; choose one of {', '.join(TMM_TYPES)}")


class RateHead(nn.Module):
    """The released ``MLPHead`` with 2 layers and ``BN_MLP``: Linear → BN → ReLU → Linear."""

    def __init__(self, dim_in: int, mlp_dim: int, num_classes: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(dim_in, mlp_dim, bias=False), nn.BatchNorm1d(mlp_dim), nn.ReLU(inplace=True),
            nn.Linear(mlp_dim, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def _scaled(dim: int, ratio: float) -> int:
    """Width scaled from ViT-B's 768 by ``ratio``, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(round(dim * ratio / 8)) * 8)


class AdViSe(Method):
    """AdViSe-style ResNet3D temporal module trained by playback-rate perception."""

    name = "advise"
    trains = True

    def __init__(self, backbone: Backbone, config: dict[str, Any]):
        super().__init__(backbone, config)
        cfg = self.config
        if cfg["tmm"] not in TMM_TYPES:
            raise UserError(f"advise: unknown tmm {cfg['tmm']!r}; choose one of {', '.join(TMM_TYPES)}")
        if cfg["temporal_kernel"] < 1 or cfg["temporal_kernel"] % 2 == 0:
            raise UserError(f"advise: temporal_kernel must be an odd number ≥ 1 (3 = real temporal mixing, 1 = released config), got {cfg['temporal_kernel']}")
        if not cfg["rates"] or any(r <= 0 for r in cfg["rates"]):
            raise UserError(f"advise: rates must be a non-empty list of positive playback rates, got {cfg['rates']}")
        self.dim_in = int(cfg["channel_pool"]) or backbone.dim
        hidden = int(cfg["hidden_dim"]) or _scaled(backbone.dim, 256 / 768)
        out = int(cfg["out_dim"]) or _scaled(backbone.dim, 512 / 768)
        spatial_kernel = 1 if cfg["spatial_pool"] == 1 else 3  # as the released code: ks = 1 on a 1×1 grid
        self.tmm, self.out_dim = build_tmm(cfg["tmm"], self.dim_in, hidden, out, int(cfg["blocks"]),
                                           int(cfg["temporal_kernel"]), spatial_kernel, int(cfg["num_heads"]))
        self.head = RateHead(self.out_dim, int(cfg["mlp_dim"]), len(cfg["rates"]))
        self.tmm.to(self.device).eval()
        self.head.to(self.device).eval()

    # ----- features -------------------------------------------------------------------------
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
        x = self.tmm(tokens.permute(0, 4, 1, 2, 3).contiguous())
        return x.permute(0, 2, 3, 4, 1)

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame features from the TMM (each frame's tokens mixed with its neighbours in time)."""
        tokens = self.spatial_features(self.encode_frames(frames))
        self.tmm.eval()
        with torch.inference_mode():
            return self.temporal(tokens[None])[0].float()

    def rate_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Rate-class logits for clips of SFU tokens ``(B,T,h,w,C)`` (pooled TMM output → head)."""
        return self.head(self.temporal(tokens).mean(dim=(1, 2, 3)))

    def trainable_modules(self) -> nn.ModuleDict:
        return nn.ModuleDict({"tmm": self.tmm, "head": self.head})

    # ----- training -------------------------------------------------------------------------
    def _encode_train(self, frames: torch.Tensor) -> torch.Tensor:
        """Frozen-encoder tokens under ``no_grad`` (not inference mode: the TMM backpropagates into them)."""
        step = int(self.config["batch_size"])
        with torch.no_grad():
            return torch.cat([self.backbone.encode(frames[i : i + step].to(self.device)).float()
                              for i in range(0, frames.shape[0], step)])

    def _augment(self, frames: torch.Tensor, seed: int) -> torch.Tensor:
        """One random resized crop, colour jitter and grayscale for a whole clip (``AUG.TYPE: simple``)."""
        from torchvision.transforms import v2

        cfg = self.config
        b, c, h, s = cfg["color_jitter"]
        aug = v2.Compose([
            v2.RandomResizedCrop(int(cfg["crop"]), scale=tuple(cfg["crop_area"]), antialias=True),
            v2.RandomApply([v2.ColorJitter(b, c, s, h)], p=float(cfg["color_prob"])),
            v2.RandomGrayscale(float(cfg["grayscale_prob"])),
        ])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return aug(frames)  # v2 draws one set of parameters for the leading (time) dimension

    def _cached_tokens(self, path: Path) -> torch.Tensor:
        """All tokens of a training video (centre crop, no augmentation), computed once (``cache_tokens``)."""
        if path not in self._token_cache:
            frames = centre_crop(to_tensor(read_video(path), int(self.config["short_side"])), int(self.config["crop"]))
            self._token_cache[path] = self.spatial_features(self._encode_train(frames)).half().cpu()
        return self._token_cache[path]

    def _video_clips(self, path: Path, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``clips_per_video`` rate-sampled clips of one video as SFU tokens ``(K,T,h,w,C)`` + rate labels."""
        cfg = self.config
        rates = cfg["rates"]
        labels = rng.integers(0, len(rates), size=int(cfg["clips_per_video"]))
        n = len(self._cached_tokens(path)) if cfg["cache_tokens"] else video_length(path)
        idx = np.stack([rate_clip(n, int(cfg["num_frames"]), int(cfg["stride"]), float(rates[k]), rng, float(cfg["jitter"]))
                        for k in labels])
        if cfg["cache_tokens"]:
            tokens = self._cached_tokens(path)[torch.from_numpy(idx)].float().to(self.device)
        else:
            uniq, inverse = np.unique(idx, return_inverse=True)
            frames = to_tensor(read_video(path, uniq), int(cfg["short_side"]))[torch.from_numpy(inverse.reshape(idx.shape))]
            clips = torch.cat([self._augment(clip, int(rng.integers(2**31))) for clip in frames])
            tokens = self.spatial_features(self._encode_train(clips))
            tokens = tokens.reshape(len(labels), idx.shape[1], *tokens.shape[1:])
        return tokens, torch.from_numpy(labels)

    def _step(self, batch: list[tuple[int, int]], videos: list[Path], seed: int) -> StepOutput:
        clips, labels = zip(*(self._video_clips(videos[i], np.random.default_rng(derived_seed(seed, e, i))) for e, i in batch))
        logits = self.rate_logits(torch.cat(clips))
        target = torch.cat(labels).to(self.device)
        loss = F.cross_entropy(logits.float(), target, label_smoothing=float(self.config["label_smoothing"]))
        return StepOutput(loss, {"rate_acc": (logits.argmax(1) == target).float().mean().item()})

    def param_groups(self) -> list[dict[str, Any]]:
        """AdamW groups: weight decay on weights, none on BatchNorm/LayerNorm and biases (``BN.WEIGHT_DECAY: 0``)."""
        decay, no_decay = [], []
        for p in self.trainable_modules().parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        return [{"params": decay, "weight_decay": float(self.config["weight_decay"])},
                {"params": no_decay, "weight_decay": 0.0}]

    def fit(self, ctx: RunContext) -> dict[str, Any]:
        """Train the TMM and rate head by playback-rate perception on ``ctx.train_data`` (or reuse a checkpoint)."""
        from benchmark.data.kinetics import list_train_videos

        if ctx.train_data is None:
            raise UserError("advise trains on unlabelled videos: pass --train-data DIR (or --suite toy)")
        videos = list(list_train_videos(ctx.train_data))
        cfg = {**self.config, "train_batch_size": int(self.config["train_batch_size"])}
        module = self.trainable_modules()
        folder = checkpoint_folder(ctx, self.name, self.backbone, cfg, videos)
        self._token_cache: dict[Path, torch.Tensor] = {}
        trainer = Trainer(
            folder, module, self.param_groups(),
            step=lambda batch, _g: self._step(batch, videos, ctx.seed),
            loader=lambda epoch, start: epoch_batches(len(videos), cfg["train_batch_size"], ctx.seed, epoch)[start:],
            iters_per_epoch=len(videos) // cfg["train_batch_size"], cfg=cfg, device=self.device, seed=ctx.seed,
            progress=ctx.progress,
        )
        try:
            record = trainer.fit()
        finally:
            self._token_cache = {}
            module.eval()
        return record
