"""Co-Settle: a light projection that trades separability for temporal consistency.

Liu et al., CVPR 2026; github.com/yafeng19/Co-Settle @ 764436e. The encoder stays frozen; a projection
``Linear → Tanh → LayerNorm`` (``ST_adapter.py: AdapterBlock``) on its last-layer, post-norm patch tokens
is trained on unlabelled videos (:class:`benchmark.data.pairs.FramePairs`) with a **cycle** walk over
``[P(f(I_t)), P(f(I_t+gap)), P(f_asy(I_t))]`` (``forward_adapter``, :func:`methods.losses.cycle_loss`),
``f_asy`` re-encoding frame t with the positional embedding upsampled by ``1 + ratio`` and randomly
cropped back (PEA), and a **separability** term ``λ·KL(softmax(orig) ‖ softmax(proj))`` over channels.
MAE's optimisation (:mod:`methods.training`), one fp16 autocast around the whole step on CUDA, all three
views included (``engine_pretrain.py``); fp32 on CPU. ``init: auto`` is each backbone's own
(:data:`PROJECTION_INIT`): the authors' files build the adapter before ``self.apply(self._init_weights)``.

Deviations, each a named option: frames use each backbone's own normalisation (the authors' ImageNet
statistics for all: the backbone option ``input_norm: imagenet``). ``token_norm``: the adapter expects post-LayerNorm ViT tokens (channel scale ~1); a
CNN's are not (EfficientNet-Lite0: token norm ~75, channel std ~6.6), so the xavier projection's
pre-activations reach std ~7 and the tanh binarises them (toy suite: D_intra_norm95 0.148 → 0.28 before
any training). ``auto`` = a parameter-free LayerNorm on CNN tokens, none on ViT tokens. On a CNN, PEA is a
logged no-op (``asymmetric_pe`` forced false): the cycle's third item is ``P(f(I_t))`` itself. ``init:
orthogonal``: a random square matrix is far from orthogonal and bends the tokens' similarities before any
training (toy DAVIS, EfficientNet-Lite0, 6 seeds: the xavier projection costs J&F 0.027, its Linear alone
0.020, both pinned as CIs below 0 by tests/methods/test_cosettle_dense.py; an orthogonal Linear alone 0.002,
pinned as |Δ| < 0.005; the whole orthogonal projection 0.010, measured, not pinned).
On the toy suite the paper's lower D_intra does not appear and no defect is left to explain it (README,
"Measured behaviour").
Evaluation: the projection on the frozen tokens (``forward_features_eval``); the dense tasks' ``cosettle``
preset is T-CORE's protocol (``downstreams/propagation/util.py``): Co-Settle's evaluation code is unreleased.
"""
from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from timm.optim import param_groups_weight_decay
from torch import nn

from benchmark.backbones.base import Backbone
from benchmark.backbones.pos_embed import resampled_pos_embed, tokens_with_patch_pos, upsample_crop_patch_pos
from benchmark.context import RunContext
from benchmark.data.pairs import FramePairs
from benchmark.errors import UserError
from methods.base import Method
from methods.losses import REG_LOSSES, cycle_loss, separability_loss
from methods.training import StepOutput, derived_seed, fit_on_videos, training_videos
from benchmark.registry import METHODS

FUSION_NETS, TOKEN_NORMS = ("linear", "mlp2", "mlp3"), ("auto", "none", "layernorm")  # main_pretrain.py --fusion_net
INITS = ("xavier_uniform", "trunc_normal", "torch_default", "orthogonal")
# models/mae/models_mae.py, mocov3/vit_moco.py: xavier_uniform_; dino, ibot, blip, ijepa (init_std 0.02),
# dinov2 (init_weights_vit_timm): trunc_normal_(std=.02); clip/model.py: none. Others: MAE's (train.sh's first run).
PROJECTION_INIT = {"mae": "xavier_uniform", "mocov3": "xavier_uniform",
                   **dict.fromkeys(("dino", "ibot", "blip", "ijepa", "dinov2"), "trunc_normal"),
                   **dict.fromkeys(("clip", "clip_l14", "clip_l14_dcr"), "torch_default")}
# cal_metric.py reads ``forward_features_eval_metric`` = ``self.adapter(self.forward_encoder(x))``. Only MAE's
# ``forward_encoder`` returns the CLS token (models/mae/models_mae.py: ``return x``), so only there does the CLS
# pass through the projection; DINO, MoCo v3, iBOT, BLIP, CLIP return ``x[:, 1:]``, DINOv2 the patch tokens
# (models/{dino/vision_transformer.py, mocov3/vit_moco.py, ibot/models/vision_transformer.py, blip/vit.py,
# clip/model.py, dinov2/dinov2/models/vision_transformer.py}); I-JEPA has none; other ViTs (tests, plugins) keep it.
CAL_METRIC_WITHOUT_CLS = frozenset({"dino", "mocov3", "ibot", "blip", "clip", "clip_l14", "clip_l14_dcr", "dinov2"})


class Projection(nn.Sequential):
    """``AdapterBlock``: ``linear`` = Linear→Tanh→LayerNorm; ``mlp2`` = Linear→Tanh→Linear→LayerNorm;
    ``mlp3`` = Linear→Tanh→Linear→Tanh→Linear→LayerNorm. ``init``: :data:`INITS`, bias 0 but for torch's."""

    def __init__(self, dim: int, fusion_net: str = "linear", init: str = "xavier_uniform"):
        if fusion_net not in FUSION_NETS or init not in INITS:
            raise UserError(f"fusion_net {fusion_net!r} / init {init!r}: use one of {', '.join(FUSION_NETS)} / {', '.join(INITS)}")
        n = {"linear": 1, "mlp2": 2, "mlp3": 3}[fusion_net]
        super().__init__(*[m for i in range(n) for m in [nn.Linear(dim, dim)] + [nn.Tanh()] * (i == 0 or i < n - 1)],
                         nn.LayerNorm(dim))
        for m in self:
            if isinstance(m, nn.Linear) and init != "torch_default":
                {"xavier_uniform": nn.init.xavier_uniform_, "orthogonal": nn.init.orthogonal_,
                 "trunc_normal": lambda w: nn.init.trunc_normal_(w, std=0.02)}[init](m.weight)
                nn.init.zeros_(m.bias)


def asymmetric_tokens(backbone: Backbone, x: torch.Tensor, ratio: float, rng: torch.Generator) -> torch.Tensor:
    """``f_asy``: tokens of normalised, stride-cropped ``x`` with PEA patch positions (prefix ones kept)."""
    if getattr(backbone.model, "pos_embed", None) is None:
        raise UserError(f"backbone {backbone.meta.name} has no absolute positional embedding for PEA: set asymmetric_pe: false")
    grid = (x.shape[-2] // backbone.stride, x.shape[-1] // backbone.stride)
    pos = upsample_crop_patch_pos(resampled_pos_embed(backbone.model, grid, backbone.pos_interp), grid, ratio, rng)
    return tokens_with_patch_pos(backbone.model, x, pos)


@METHODS.register("cosettle", "Co-Settle: linear projection trained with cycle consistency + separability (CVPR 2026)")
class CoSettle(Method):
    """Co-Settle (Liu et al., CVPR 2026): a projection on frozen tokens trained for the trade-off."""

    name = "cosettle"
    version = 2  # 2: per-backbone init, CNN token norm, one precision per step
    trains = True
    freeze_encoder = True

    def __init__(self, backbone: Backbone, config: dict[str, Any]):
        super().__init__(backbone, config)
        c, self.notes = self.config, []
        if c.get("reg_loss") not in REG_LOSSES:
            raise UserError(f"{self.name}.reg_loss {c.get('reg_loss')!r} is unknown: use one of {', '.join(REG_LOSSES)}")
        is_vit = backbone.meta.family == "vit"
        c["init"] = PROJECTION_INIT.get(backbone.meta.name, "xavier_uniform") if c["init"] == "auto" else c["init"]
        if c["token_norm"] not in TOKEN_NORMS:
            raise UserError(f"{self.name}.token_norm {c['token_norm']!r} is unknown: use one of {', '.join(TOKEN_NORMS)}")
        c["token_norm"] = ("none" if is_vit else "layernorm") if c["token_norm"] == "auto" else c["token_norm"]
        if not is_vit and c["asymmetric_pe"]:
            self.notes.append(f"{backbone.meta.name} is a CNN without positional embeddings: asymmetric_pe (PEA) "
                              "forced false, the cycle's third item is P(f(I_t))")
            logging.getLogger(__name__).warning(self.notes[-1])
            c["asymmetric_pe"] = False
        self.projection: Projection | None = None  # built by fit (seeded by the run)

    def _trainable(self) -> nn.Module:  # FineTune adds the encoder
        return self.projection

    def _param_groups(self) -> list[dict[str, Any]]:  # no decay on biases, 1-D params (add_weight_decay_adapter)
        return param_groups_weight_decay(self._trainable(), float(self.config["weight_decay"]))

    def _token_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(tokens, tokens.shape[-1:]) if self.config["token_norm"] == "layernorm" else tokens

    def training_step(self, batch: torch.Tensor, rng: torch.Generator) -> StepOutput:
        """One ``forward_adapter`` step on ``batch`` ``(B, 2, 3, S, S)`` (frames t and t + gap), all in the
        caller's precision: the encoder is called without :meth:`Backbone.encode`'s own autocast."""
        s, (b, _, _, h, w) = self.backbone.stride, batch.shape
        x = self.backbone.normalise(batch.to(self.device, non_blocking=True)[..., : h // s * s, : w // s * s].flatten(0, 1))
        with torch.set_grad_enabled(not self.freeze_encoder):
            f = self.backbone.tokens(x).unflatten(0, (b, 2))
            f_asy = (asymmetric_tokens(self.backbone, x.unflatten(0, (b, 2))[:, 0], float(self.config["asy_pos_ratio"]), rng)
                     if self.config["asymmetric_pe"] else f[:, 0])
            orig = self._token_norm(torch.cat([f, f_asy.unsqueeze(1)], dim=1))  # (B, 3, h, w, D)
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
        """Train (or resume, or reuse) the projection on ``ctx.train_data``; return the training record."""
        videos = training_videos(ctx)
        self._build_projection(ctx.seed)
        record = fit_on_videos(ctx, self.name, self.backbone, self.config, videos, FramePairs(videos, self.config, ctx.seed),
                               self._trainable(), self._param_groups(), self.training_step, self.device)
        self._trainable().eval()
        return {**record, "method": self.name, "backbone": self.backbone.meta.name, "train_videos": len(videos),
                **{k: self.config[k] for k in ("asymmetric_pe", "init", "token_norm")}, "notes": self.notes}

    @torch.inference_mode()
    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Projection of the encoder's tokens, ``(T, h, w, D)``, unnormalised (``forward_features_eval``)."""
        return self._projected(self.encode_frames(frames))

    @torch.inference_mode()
    def frame_tokens(self, frames: torch.Tensor) -> torch.Tensor | None:
        """``(T, 1 + h·w, D)`` for the tradeoff task's ``cal_metric``: the projection of every token cal_metric.py's
        adapter sees on this backbone, CLS first, where it keeps the CLS; None where it does not
        (:data:`CAL_METRIC_WITHOUT_CLS`, a CNN): :meth:`frame_features` is then the whole token set."""
        if not self.backbone.num_prefix_tokens or self.backbone.meta.name in CAL_METRIC_WITHOUT_CLS:
            return None
        return self._projected(self.encode_tokens(frames))

    def _projected(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.projection is None:
            raise RuntimeError(f"{self.name}: call fit(ctx) before evaluating (the runner does)")
        return self.projection(self._token_norm(tokens))
