"""Typed fields of the built-in methods' configs: what each key may hold, never its value.

The values stay in ``configs/methods/<name>.yaml`` (one source of defaults, each with the line of the
authors' code it comes from); these models say what a value may be, so a temperature of ``"hot"``
or a batch of 0 is refused by :func:`benchmark.config.configure` before a model is built, not after
training. Models are strict (no ``"5"`` for 5, no ``1`` for ``true``, no NaN or inf) and forbid extra
keys, and every field is required: a YAML key without a field, or a field without a YAML key, fails
the sync test (``tests/test_config.py``). Keyed by ``(kind, name)`` so that the core imports no
method; a method or task class may instead declare its own model as ``Config`` (looked up first).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Pos = Annotated[int, Field(ge=1)]
NonNeg = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Prob = Annotated[float, Field(ge=0, le=1)]


def _low_high(v: list[float]) -> list[float]:
    if v[0] > v[1]:
        raise ValueError(f"must be [low, high] with low <= high, got {v}")
    return v


Interval01 = Annotated[list[Annotated[float, Field(gt=0, le=1)]], Field(min_length=2, max_length=2),
                       AfterValidator(_low_high)]
PosInterval = Annotated[list[PosFloat], Field(min_length=2, max_length=2), AfterValidator(_low_high)]
Betas = Annotated[list[Annotated[float, Field(ge=0, lt=1)]], Field(min_length=2, max_length=2)]


class Strict(BaseModel):
    """Base of every config model: exact types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Optimisation(Strict):
    """Schedule and optimiser keys shared by the trained methods (methods/training.py)."""

    epochs: Pos
    warmup_epochs: NonNeg
    min_lr: NonNegFloat
    weight_decay: NonNegFloat
    betas: Betas
    train_batch_size: Pos
    amp: bool
    batch_size: Pos  # frames per encoder forward at evaluation
    checkpoint_every_iters: Pos

    @model_validator(mode="after")
    def _warmup_shorter_than_training(self) -> Any:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs})")
        return self


class CoSettleConfig(Optimisation):
    """configs/methods/cosettle.yaml."""

    fusion_net: Literal["linear", "mlp2", "mlp3"]
    init: Literal["auto", "xavier_uniform", "trunc_normal", "torch_default", "orthogonal"]  # auto: the backbone's own code
    token_norm: Literal["auto", "none", "layernorm"]  # auto: parameter-free LayerNorm on CNN tokens only
    clip_gap: Annotated[float, Field(gt=0, lt=1)]
    pre_resize: Pos
    input_size: Pos
    crop_scale: Interval01
    crop_ratio: PosInterval
    hflip_p: Prob
    asymmetric_pe: bool
    asy_pos_ratio: NonNegFloat
    temp: PosFloat
    win_size: Pos
    reg_loss: Literal["kl", "mse"]
    lambda_reg: NonNegFloat
    blr: PosFloat
    lr: Optional[PosFloat]  # None: derived from blr
    num_workers: NonNeg


class FineTuneConfig(CoSettleConfig):
    """configs/methods/finetune.yaml: Co-Settle's keys plus layer-wise lr decay."""

    layer_decay: Annotated[float, Field(gt=0, le=1)]


class AdViSeConfig(Optimisation):
    """configs/methods/advise.yaml."""

    tmm: Literal["resnet3d", "conv3d", "transformer"]
    blocks: Pos
    hidden_dim: NonNeg  # 0: derived from the backbone width
    out_dim: NonNeg
    temporal_kernel: Pos
    num_heads: Pos
    spatial_pool: NonNeg
    channel_pool: NonNeg
    rates: Annotated[list[Pos], Field(min_length=2)]
    jitter: Annotated[float, Field(ge=0, lt=1)]
    num_frames: Pos
    stride: Pos
    clips_per_video: Pos
    mlp_dim: Pos
    label_smoothing: Annotated[float, Field(ge=0, lt=1)]
    augment: Literal["release", "ours"]  # release: squash, RandomCrop, colour jitter (datasets/__init__.py)
    resize: Annotated[list[Pos], Field(min_length=2, max_length=2)]  # the release's squash (w, h)
    crop: Pos
    color_prob: Prob
    color_jitter: Annotated[list[NonNegFloat], Field(min_length=4, max_length=4)]
    normalise: Literal["imagenet", "backbone"]
    short_side: Pos  # ours only
    crop_area: Interval01  # ours only
    grayscale_prob: Prob  # ours only
    cache_tokens: bool
    encoder_precision: Literal["bf16", "fp32"]  # bf16: the release's TM.ENABLE_BF16 (on CUDA)
    base_lr: PosFloat  # lr = base_lr x train_batch_size / 64 (solver.py adjust_base_lr)
    decay_norms: bool


SCHEMAS: dict[tuple[str, str], type[BaseModel]] = {
    ("method", "cosettle"): CoSettleConfig,
    ("method", "finetune"): FineTuneConfig,
    ("method", "advise"): AdViSeConfig,
}
