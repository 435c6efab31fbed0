"""AdViSe's Temporal Modelling Module types and rate head (``models/temporal_modeling.py`` of
github.com/JingwWu/advise-video-ssl: ``load_temporal_model``, ``load_head``).

* ``resnet3d``: a ResStage of bottleneck blocks. The release builds it with
  ``temp_kernel_sizes=[[1]]`` (1×1×1 → 1×3×3 → 1×1×1: no block mixes frames); ``temporal_kernel``
  sets the first convolution's kernel to kt×1×1 (3 by default, a deliberate fix; 1 = the release).
* ``conv3d``: two ``ks×ks×ks`` 3-D convolutions with SiLU, ``ks = 3`` (1 when the grid is pooled to
  1×1), padding 1 — the release's conv3d TMM mixes frames with a 3×3×3 kernel. Here its temporal
  extent is ``temporal_kernel``: 3 by default = the release on an unpooled grid; on a grid pooled to
  1×1 the release's ``ks = 1`` drops the temporal mixing too, ours keeps kt×1×1 (a deviation;
  ``temporal_kernel: 1`` reproduces it).
* ``transformer`` (the release's ``tfmer_enc``): pre-norm encoder layers over all space-time tokens.
  Two deviations: the release builds one ``TransformerEncoderLayer``, ours stacks ``blocks`` of them
  (``blocks: 1`` reproduces it); the release's layer has no positional encoding and cannot see frame
  order, so a fixed sinusoidal time encoding is added.

Why the bottleneck block is written here rather than taken from mmaction2: mmaction2 1.2.0's
``Bottleneck3d`` lives in ``mmaction.models.backbones.resnet3d``, and ``import mmaction.models`` fails
on the PyPI release (its ``localizers/drn`` folder is missing, upstream issue #2714); it also needs
mmcv's ``ConvModule`` builders. The block is SlowFast's ``BottleneckTransform`` (kt×1×1 → 1×3×3 →
1×1×1 with BatchNorm, projection shortcut when the width changes) in 30 lines of torch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import UserError

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
