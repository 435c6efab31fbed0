"""Co-Settle: a light projection that trades separability for temporal consistency.

Consistency-Separability Trade-off Transfer Learning (Liu et al., CVPR 2026; code
github.com/yafeng19/Co-Settle, commit 764436e). The image encoder stays frozen; a projection
``Linear(D, D) → Tanh → LayerNorm(D)`` (``ST_adapter.py: AdapterBlock``) on its last-layer, post-norm
patch tokens is trained on unlabelled videos with

* a **cycle-consistency** walk over ``[P(f(I_t)), P(f(I_t+gap)), P(f_asy(I_t))]``
  (``forward_adapter`` → ``forward_asy_cycle_loss``, :func:`methods.losses.cycle_loss`), where
  ``f_asy`` re-encodes frame t with the patch positional embedding bicubically upsampled to
  ``int((1 + ratio)·h)`` per side and randomly cropped back (``interpolate_and_crop_pos_embed``): the
  walk cannot return home by matching positions, only content (the paper's PEA);
* a **separability** constraint, ``λ·KL(softmax(orig) ‖ softmax(proj))`` over channels
  (``forward_kl_loss``, :func:`methods.losses.separability_loss`).

Frames: ``sample_two_frames_tuple`` (``util/video/video_utils.py``), of which the adapter path uses
the "current" frames t and t + gap, gap = ``int(0.15·n)``; both are resized to 224×224, then share
one BYOL-style RandomResizedCrop (scale 0.5–1, ratio 3/4–4/3, bicubic) and one horizontal flip
(``util/video_datasets.py: DoubleTupleRandomResizedCrop``, ``util/video/image_utils.py: RRC``).
The optimisation is MAE's (:mod:`methods.training`).

Deviations, each a named option or a documented necessity: frames are normalised with each
backbone's own statistics (the authors use ImageNet's for every encoder, CLIP included; evaluation
here uses the backbone's, so training does too). On a CNN backbone (``efficientnet_lite0``) the same
projection is applied to the feature map, and PEA, which needs a positional embedding, is a logged
no-op (``asymmetric_pe`` forced false): the third item of the cycle is then ``P(f(I_t))`` itself.

Evaluation: ``frame_features`` = the projection on the frozen tokens (``forward_features_eval``),
so every task runs unchanged.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from timm.layers import resample_abs_pos_embed
from timm.optim import param_groups_weight_decay
from torch import nn
from torch.utils.data import DataLoader, Dataset

from benchmark.backbones.base import Backbone
from benchmark.context import RunContext
from benchmark.errors import UserError
from methods.base import Method
from methods.losses import REG_LOSSES, cycle_loss, separability_loss
from methods.training import (
    StepOutput,
    Trainer,
    checkpoint_folder,
    derived_seed,
    epoch_batches,
)
from benchmark.data.kinetics import list_train_videos
from benchmark.data.sampling import frame_pair_with_previous
from benchmark.data.video import read_video, to_tensor, video_length

log = logging.getLogger(__name__)
FUSION_NETS = ("linear", "mlp2", "mlp3")  # main_pretrain.py --fusion_net choices
INITS = ("xavier_uniform", "trunc_normal", "torch_default")


class Projection(nn.Module):
    """``AdapterBlock`` (``ST_adapter.py``): ``linear`` = Linear→Tanh→LayerNorm; ``mlp2`` =
    Linear→Tanh→Linear→LayerNorm; ``mlp3`` = Linear→Tanh→Linear→Tanh→Linear→LayerNorm.

    ``init``: ``xavier_uniform`` with zero bias (MAE's ``_init_weights`` applied to the whole model,
    adapter included), ``trunc_normal`` std 0.02 (the DINO/iBOT files), or PyTorch's default.
    """

    def __init__(self, dim: int, fusion_net: str = "linear", init: str = "xavier_uniform"):
        super().__init__()
        if fusion_net not in FUSION_NETS:
            raise UserError(f"fusion_net {fusion_net!r} is unknown: use one of {', '.join(FUSION_NETS)}")
        if init not in INITS:
            raise UserError(f"init {init!r} is unknown: use one of {', '.join(INITS)}")
        n_linear = {"linear": 1, "mlp2": 2, "mlp3": 3}[fusion_net]
        layers: list[nn.Module] = []
        for i in range(n_linear):
            layers.append(nn.Linear(dim, dim))
            if i == 0 or i < n_linear - 1:
                layers.append(nn.Tanh())
        layers.append(nn.LayerNorm(dim))
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear) and init != "torch_default":
                (nn.init.xavier_uniform_ if init == "xavier_uniform" else lambda w: nn.init.trunc_normal_(w, std=0.02))(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def crop_upsampled_pos(patch_pos: torch.Tensor, ratio: float, rng: torch.Generator) -> torch.Tensor:
    """PEA: ``(1, h, w, C)`` patch positions → bicubic upsample to ``int((1+ratio)·side)`` → random
    ``h × w`` crop, one offset per batch (``interpolate_and_crop_pos_embed``)."""
    _, h, w, _ = patch_pos.shape
    up_h, up_w = int((1 + ratio) * h), int((1 + ratio) * w)
    grid = F.interpolate(patch_pos.permute(0, 3, 1, 2), size=(up_h, up_w), mode="bicubic", align_corners=False)
    oh = int(torch.randint(0, up_h - h + 1, (1,), generator=rng))
    ow = int(torch.randint(0, up_w - w + 1, (1,), generator=rng))
    return grid[:, :, oh : oh + h, ow : ow + w].permute(0, 2, 3, 1)


def asymmetric_tokens(backbone: Backbone, frames: torch.Tensor, ratio: float, rng: torch.Generator) -> torch.Tensor:
    """``f_asy``: the ViT's tokens of ``frames`` (``(B,3,H,W)`` in [0,1]) with PEA positions.

    The same pixels and patch embedding as :meth:`Backbone.encode`; only the patch positional
    embedding differs (prefix tokens keep theirs). Mirrors timm's ``VisionTransformer._pos_embed``
    + ``forward_features`` (``pos_drop``, ``patch_drop``, ``norm_pre`` — CLIP's ``ln_pre`` —,
    ``blocks``, ``norm`` — CLIP's ``ln_post``), so ``ratio = 0`` reproduces ``encode`` exactly.
    """
    m = backbone.model
    if getattr(m, "pos_embed", None) is None:
        raise UserError(f"backbone {backbone.meta.name} has no absolute positional embedding for PEA: set asymmetric_pe: false")
    s = backbone.stride
    frames = frames[..., : frames.shape[-2] // s * s, : frames.shape[-1] // s * s]
    x = m.patch_embed(backbone.normalise(frames))
    b, h, w = x.shape[0], frames.shape[-2] // s, frames.shape[-1] // s
    x = x.reshape(b, h * w, -1)
    n_pre = 0 if m.no_embed_class else m.num_prefix_tokens
    pos = resample_abs_pos_embed(m.pos_embed, new_size=(h, w), old_size=m.patch_embed.grid_size, num_prefix_tokens=n_pre)
    patch_pos = crop_upsampled_pos(pos[:, n_pre:].reshape(1, h, w, -1), ratio, rng).reshape(1, h * w, -1)
    x = x + patch_pos
    prefix = [t.expand(b, -1, -1) for t in (m.cls_token, m.reg_token) if t is not None]
    if prefix:
        pre = torch.cat(prefix, dim=1)
        x = torch.cat([pre if m.no_embed_class else pre + pos[:, :n_pre], x], dim=1)
    x = m.norm_pre(m.patch_drop(m.pos_drop(x)))
    x = m.norm(m.blocks(x))
    return x[:, m.num_prefix_tokens :].reshape(b, h, w, -1)


def byol_crop_params(height: int, width: int, scale: Sequence[float], ratio: Sequence[float],
                     rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``RRC.get_params`` (``util/video/image_utils.py``, after BYOL): one draw, no retry loop."""
    area = height * width * rng.uniform(scale[0], scale[1])
    aspect = float(np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]))))
    w = min(round(float(np.sqrt(area * aspect))), width)
    h = min(round(float(np.sqrt(area / aspect))), height)
    return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w


class FramePairs(Dataset):
    """Training samples: frames ``(t, t + gap)`` of one video with a shared crop and flip, ``(2,3,S,S)``.

    Indices: :func:`benchmark.data.sampling.frame_pair_with_previous` (the authors'
    ``sample_two_frames_tuple``, which ``--use_adapter`` selects; ``forward_adapter`` reads only its
    "current" frames t and t + gap). Both frames are squashed to ``pre_resize``² (``TRANSFORM``), then
    share one BYOL-style crop resized bicubically to ``input_size`` and one flip.
    Indexed by ``(epoch, video_index)``; every draw comes from a generator seeded by
    ``(seed, epoch, video_index)``, so any worker count and any resume point give the same sample.
    """

    def __init__(self, videos: Sequence[Path], cfg: dict[str, Any], seed: int):
        self.videos, self.cfg, self.seed = list(videos), cfg, seed

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        epoch, idx = key
        rng = np.random.default_rng(derived_seed(self.seed, 0, epoch, idx))
        path = self.videos[idx]
        _, t, _, t_gap = frame_pair_with_previous(video_length(path), float(self.cfg["clip_gap"]), rng)
        pre = int(self.cfg["pre_resize"])
        x = to_tensor(read_video(path, [t, t_gap]), (pre, pre))
        top, left, h, w = byol_crop_params(pre, pre, self.cfg["crop_scale"], self.cfg["crop_ratio"], rng)
        size = [int(self.cfg["input_size"])] * 2
        x = TF.resized_crop(x, top, left, h, w, size, interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
        return TF.horizontal_flip(x) if rng.random() < float(self.cfg["hflip_p"]) else x


def list_training_videos(ctx: RunContext) -> list[Path]:
    """The videos under ``--train-data`` (video files or frame folders)."""
    if ctx.train_data is None:
        raise UserError("this method trains on unlabelled videos: pass --train-data DIR (or --suite toy)")
    return list(list_train_videos(Path(ctx.train_data)))


class CoSettle(Method):
    """Co-Settle (Liu et al., CVPR 2026): a projection on frozen tokens trained for the trade-off."""

    name = "cosettle"
    trains = True
    freeze_encoder = True

    def __init__(self, backbone: Backbone, config: dict[str, Any]):
        super().__init__(backbone, config)
        self.notes: list[str] = []
        if self.config.get("reg_loss") not in REG_LOSSES:
            raise UserError(f"{self.name}.reg_loss {self.config.get('reg_loss')!r} is unknown: use one of {', '.join(REG_LOSSES)}")
        if backbone.meta.family != "vit" and self.config["asymmetric_pe"]:
            note = (f"{backbone.meta.name} is a CNN without positional embeddings: asymmetric_pe (PEA) forced false, "
                    "the cycle's third item is P(f(I_t))")
            log.warning(note)
            self.notes.append(note)
            self.config["asymmetric_pe"] = False
        self.projection: Projection | None = None

    def _trainable(self) -> nn.Module:
        assert self.projection is not None
        return self.projection

    def _param_groups(self) -> list[dict[str, Any]]:
        """No weight decay on biases and 1-D parameters (``add_weight_decay_adapter``)."""
        return param_groups_weight_decay(self._trainable(), float(self.config["weight_decay"]))

    def _encoder_context(self) -> contextlib.AbstractContextManager:
        return torch.no_grad() if self.freeze_encoder else contextlib.nullcontext()

    def training_step(self, batch: torch.Tensor, rng: torch.Generator) -> StepOutput:
        """One ``forward_adapter`` step on ``batch`` ``(B, 2, 3, S, S)`` (frames t and t + gap)."""
        assert self.projection is not None
        batch = batch.to(self.device, non_blocking=True)
        b = batch.shape[0]
        with self._encoder_context():
            both = self.backbone.encode(batch.flatten(0, 1)).unflatten(0, (b, 2))
            f_t, f_gap = both[:, 0], both[:, 1]
            f_asy = (asymmetric_tokens(self.backbone, batch[:, 0], float(self.config["asy_pos_ratio"]), rng)
                     if self.config["asymmetric_pe"] else f_t)
        orig = torch.stack([f_t, f_gap, f_asy], dim=1)  # (B, 3, h, w, D)
        proj = F.normalize(self.projection(orig), p=2, dim=-1)
        cyc = cycle_loss(proj, temp=float(self.config["temp"]), win_size=int(self.config["win_size"]))
        reg = separability_loss(F.normalize(orig, p=2, dim=-1), proj, self.config["reg_loss"])
        loss = cyc.loss + float(self.config["lambda_reg"]) * reg
        return StepOutput(loss, {"cycle_loss": float(cyc.loss.detach()), "reg_loss": float(reg.detach()),
                                 "cycle_acc": float(cyc.accuracy), "sim_identity": float(cyc.sim_identity.detach())})

    def _build_projection(self, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derived_seed(seed, 2))
            self.projection = Projection(self.backbone.dim, self.config["fusion_net"], self.config["init"]).to(self.device)

    def fit(self, ctx: RunContext) -> dict[str, Any]:
        """Train (or resume, or reuse) the projection on ``ctx.train_data``; return the training record.

        ``ctx.extra["after_train_step"]``, if set, is called with the global iteration after each
        step (tests raise from it to simulate a kill).
        """
        videos = list_training_videos(ctx)
        self._build_projection(ctx.seed)
        folder = checkpoint_folder(ctx, self.name, self.backbone, self.config, videos)
        data = FramePairs(videos, self.config, ctx.seed)
        bs = int(self.config["train_batch_size"])
        workers = int(self.config["num_workers"])

        def loader(epoch: int, start: int) -> DataLoader:
            batches = epoch_batches(len(data), bs, ctx.seed, epoch)[start:]
            return DataLoader(data, batch_sampler=batches, num_workers=workers)

        trainer = Trainer(folder, self._trainable(), self._param_groups(), self.training_step, loader,
                          len(videos) // bs, self.config, self.device, ctx.seed, ctx.progress,
                          after_step=ctx.extra.get("after_train_step"))
        record = trainer.fit()
        self._trainable().eval()
        return {**record, "method": self.name, "backbone": self.backbone.meta.name, "train_videos": len(videos),
                "asymmetric_pe": bool(self.config["asymmetric_pe"]), "notes": self.notes}

    @torch.inference_mode()
    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Projection of the (frozen or fine-tuned) encoder's tokens, ``(T, h, w, D)``, unnormalised
        as the authors' ``forward_features_eval`` returns them."""
        if self.projection is None:
            raise RuntimeError(f"{self.name}: call fit(ctx) before frame_features (the runner does)")
        return self.projection(self.encode_frames(frames))
