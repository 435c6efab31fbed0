"""ViT backbones (timm ``VisionTransformer``) with authors' checkpoints and any-resolution tokens.

Every model is built with ``dynamic_img_size=True`` so timm interpolates the positional embedding
to the input's token grid: 480×880 DAVIS frames work, where Co-Settle's own MAE code path, which
adds a fixed 14×14 embedding, breaks. The tokens are the last block's output after the final norm
with prefix tokens (CLS, registers) dropped — what Co-Settle, CRW and DINO's propagation read.

The architecture's width, depth and patch size are read from the checkpoint (heads = width / 64, as
every released ViT uses), so the same code loads a ViT-B release and the tiny synthetic checkpoints
the tests write in each author's layout.

Each released model is one variant class below, registered with ``@BACKBONES.register("name")`` (timm's
``@register_model``): its :class:`BackboneMeta`, its checkpoint converter and any timm keyword it needs.
Adding a variant, here or in a user's ``--plugin`` file, is that one class and nothing else; its
options and their typed defaults are the ``__init__`` keywords of :class:`ViTVariant`.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar, Literal

import timm
import torch
from pydantic import Field
from timm.models.vision_transformer import checkpoint_filter_fn

from benchmark.backbones import converters as conv
from benchmark.backbones.base import Backbone, BackboneMeta, InputNorm, Precision
from benchmark.backbones.pos_embed import POS_INTERPS, resampled_pos_embed, sequence_with_patch_pos
from benchmark.backbones.fetch import meta_source, on_demand
from benchmark.backbones.weights import (
    file_sha256,
    hub_cache_file,
    load_checkpoint,
    weights_dir,
)
from benchmark.errors import UserError
from benchmark.registry import BACKBONES

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
Heads = Annotated[int, Field(ge=1)] | None  # None: width / 64, as every released ViT


PosInterp = Literal[POS_INTERPS]


class ViTBackbone(Backbone):
    """A timm ViT returning its last-layer, post-norm patch tokens as a ``(B,h,w,C)`` grid.

    ``pos_interp``: how the positional embedding reaches other grids, ``dino`` (DINO's +0.1 scale-factor
    bicubic, the authors' code of MAE, MoCo v3, DINO, iBOT, I-JEPA and DINOv2 as vendored in Co-Settle
    @ 764436e) or ``timm`` (timm's resampling, as its BLIP and CLIP files do); see
    :mod:`benchmark.backbones.pos_embed`. Each variant's default is its ``option_defaults``.
    """

    def __init__(self, meta: BackboneMeta, model: torch.nn.Module, weights_id: str, pos_interp: str = "timm",
                 precision: str = "fp32", input_norm: str = "own"):
        super().__init__()
        if pos_interp not in POS_INTERPS:
            raise UserError(f"{meta.name}.pos_interp {pos_interp!r} is unknown: use one of {', '.join(POS_INTERPS)}")
        self.meta = meta
        self.model = model
        self.stride = int(model.patch_embed.patch_size[0])
        self.dim = int(model.embed_dim)
        self.num_prefix_tokens = int(model.num_prefix_tokens)  # CLS (and registers); 0 for I-JEPA
        self.weights_id = weights_id
        self.pos_interp = pos_interp
        self.set_precision(precision)
        self.set_input_norm(input_norm)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        if self.pos_interp == "dino":
            grid = (x.shape[-2] // self.stride, x.shape[-1] // self.stride)
            return sequence_with_patch_pos(self.model, x, resampled_pos_embed(self.model, grid, "dino"))
        return self.model.forward_features(x)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // self.stride, x.shape[-1] // self.stride
        return self.sequence(x)[:, self.num_prefix_tokens :].reshape(x.shape[0], h, w, -1)


def _infer_arch(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Width, depth and patch size from a checkpoint (OpenAI-CLIP or timm key names)."""
    patch = state.get("patch_embed.proj.weight", state.get("visual.conv1.weight"))
    if patch is None:
        raise UserError(
            "checkpoint has no patch embedding ('patch_embed.proj.weight' or 'visual.conv1.weight'): it is not a ViT "
            "checkpoint for this backbone; pass the authors' released file"
        )
    depth = 1 + max(
        (int(m.group(1)) for k in state for m in [re.search(r"(?:^blocks|resblocks)\.(\d+)\.", k)] if m), default=-1
    )
    dim, patch_size = int(patch.shape[0]), int(patch.shape[-1])
    arch = {"embed_dim": dim, "depth": depth, "num_heads": max(1, dim // 64), "patch_size": patch_size}
    pos = state.get("pos_embed", state.get("visual.positional_embedding"))
    if pos is not None:  # build at the checkpoint's own grid, so loading resamples nothing
        n = pos.shape[-2] - int("cls_token" in state or "visual.class_embedding" in state)
        grid = int(round(n**0.5))
        if grid * grid == n:
            arch["img_size"] = grid * patch_size
    return arch


def _load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    state = checkpoint_filter_fn(state, model)
    state = {k: v for k, v in state.items() if not k.startswith("head.")}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("head")]
    if missing or result.unexpected_keys:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
        if result.unexpected_keys:
            parts.append(f"unexpected {len(result.unexpected_keys)} keys (e.g. {', '.join(result.unexpected_keys[:3])})")
        raise UserError(f"weights file {source} does not fit this backbone: {'; '.join(parts)}; use the backbone that matches the file")


def _create(arch: str, **kwargs: Any) -> torch.nn.Module:
    return timm.create_model(arch, pretrained=False, num_classes=0, dynamic_img_size=True, **kwargs)


def _from_hub_cache(tag: str, extra: dict[str, Any]) -> torch.nn.Module | None:
    """timm's pretrained model if the Hugging Face cache already holds it; never touches the network."""
    from huggingface_hub import constants

    if hub_cache_file(tag) is None:
        return None
    offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        return timm.create_model(tag, pretrained=True, num_classes=0, dynamic_img_size=True, **extra)
    except Exception:  # timm/huggingface_hub raise many types when a cached file is unusable
        return None
    finally:
        constants.HF_HUB_OFFLINE = offline


SIZES = {"tiny": (192, 12, "Ti"), "small": (384, 12, "S"), "base": (768, 12, "B"), "large": (1024, 24, "L"),
         "huge": (1280, 32, "H"), "giant": (1408, 40, "g")}  # timm's ViT sizes: width, depth, paper name


def _arch_note(declared: str, arch: dict[str, Any]) -> str:
    """`` (ViT-S/16 from checkpoint)`` when the file's shape is not the variant's (a ViT-S in MAE's layout
    loaded as ``mae``), else "": the label then says what was measured, and a table never shows it as ViT-B."""
    m = re.match(r"vit_(\w+?)_patch(\d+)", declared)
    got = (arch["embed_dim"], arch["depth"], arch["patch_size"])
    if m and m.group(1) in SIZES and SIZES[m.group(1)][:2] + (int(m.group(2)),) == got:
        return ""
    name = next((n for w, d, n in SIZES.values() if (w, d) == got[:2]), f"{got[0]}x{got[1]}")
    return f" (ViT-{name}/{got[2]} from checkpoint)"


def missing_weights(meta: BackboneMeta) -> str:
    """The one line for a variant whose weights are nowhere (also said by `bench run`'s preflight)."""
    hub = f", or have timm's hub cache hold '{meta.hub_tag}'" if meta.hub_tag else ""
    fetch = (f" (`bench weights fetch {meta.name}` does it where the network is reachable)"
             if meta_source(meta).kind in ("url", "hub") else "")
    return (f"no weights for backbone {meta.name!r}: download {meta.weights_file} from {meta.weights_url} and "
            f"pass --weights PATH or put it at {weights_dir() / meta.weights_file}{hub}{fetch}")


class ViTVariant(ViTBackbone):
    """A released ViT built from the authors' file (``--weights``, the weights folder) or timm's hub cache,
    fetched first when neither has it and the run is not offline (:func:`benchmark.backbones.fetch.on_demand`).

    A variant subclass declares ``meta``, ``convert`` (authors' layout → timm keys, see
    :mod:`benchmark.backbones.converters`) and ``timm_kwargs``; everything else is shared.

    Raises:
        UserError: no weights anywhere (says which file to fetch and where to put it), or a file that
            does not match the layout or the architecture.
    """

    convert: ClassVar[Callable[[dict[str, Any]], dict[str, Any]]]
    timm_kwargs: ClassVar[dict[str, Any]] = {}

    @classmethod
    def default_weights_file(cls) -> Path | None:
        """The file a run without ``--weights`` loads (weights folder, else timm's hub cache), or None.

        Read before anything is built, so a result's identity holds the digest of the bytes it will load
        and a new file at the same place makes older results stale (:mod:`benchmark.identity`).
        """
        local = weights_dir() / cls.meta.weights_file
        if local.is_file():
            return local
        cached = hub_cache_file(cls.meta.hub_tag) if cls.meta.hub_tag else None
        return Path(cached) if cached else None

    def __init__(self, weights: str | Path | None = None, num_heads: Heads = None, pos_interp: PosInterp = "timm",
                 precision: Precision = "fp32", input_norm: InputNorm = "own"):
        meta = type(self).meta
        opts = {"pos_interp": pos_interp, "precision": precision, "input_norm": input_norm}
        if weights is None and (weights_dir() / meta.weights_file).is_file():
            weights = weights_dir() / meta.weights_file
        failed = ""
        if weights is None and not (meta.hub_tag and hub_cache_file(meta.hub_tag)):
            try:
                weights = on_demand(meta)  # None: offline, nothing to fetch, or fetched into the hub cache
            except UserError as e:  # unreachable, interrupted, wrong digest: said inside the usual message
                failed = f"; fetching it failed: {e}"
        if weights is not None:
            path = Path(weights)
            try:
                state = type(self).convert(load_checkpoint(path))
            except UserError as e:
                raise UserError(f"weights file {path}: {e}") from None
            arch_kwargs = _infer_arch(state)
            if num_heads:
                arch_kwargs["num_heads"] = num_heads
            model = _create(meta.arch, **self.timm_kwargs, **arch_kwargs)
            _load_into(model, state, str(path))
            shape = ", ".join(f"{k}={v}" for k, v in arch_kwargs.items())
            meta = replace(meta, notes=f"{meta.notes}; shape read from the checkpoint: {shape}".lstrip("; "))
            super().__init__(meta, model.eval(), f"{path.name}@sha256:{file_sha256(path)}", **opts)
            self.arch_note = _arch_note(meta.arch, arch_kwargs)
            return
        model = _from_hub_cache(meta.hub_tag, self.timm_kwargs) if meta.hub_tag else None
        if model is None:
            raise UserError(missing_weights(meta) + failed)
        super().__init__(meta, model.eval(), f"hub:{meta.hub_tag}", **opts)

    arch_note = ""  # set when the checkpoint's shape is not the variant's (see _arch_note)

    @property
    def label(self) -> str:
        return super().label + self.arch_note


class DinoInterpViT(ViTVariant):
    """A variant whose authors' evaluation code resizes positional embeddings DINO's way (the +0.1 scale
    factor, :mod:`benchmark.backbones.pos_embed`): that is its ``pos_interp`` default."""

    option_defaults = {"pos_interp": "dino"}


@BACKBONES.register("mae")
class MAE(DinoInterpViT):
    """MAE ViT-B/16 (He et al. 2022)"""

    meta = BackboneMeta("mae", "vit_base_patch16_224", "vit", "MAE, He et al. CVPR 2022", "mae_pretrain_vit_base.pth",
                        "https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_base.pth", "vit_base_patch16_224.mae")
    convert = staticmethod(conv.convert_mae)


@BACKBONES.register("ijepa")
class IJEPA(DinoInterpViT):
    """I-JEPA ViT-B/16 (Assran et al. 2023)"""

    meta = BackboneMeta("ijepa", "vit_base_patch16_224", "vit", "I-JEPA, Assran et al. CVPR 2023", "ijepa_vitb16.pth.tar",
                        "https://github.com/facebookresearch/ijepa (an I-JEPA ViT-B/16 checkpoint in its release layout)",
                        notes="no CLS token; tokens are the encoder output after its final norm")
    convert = staticmethod(conv.convert_ijepa)
    timm_kwargs = {"class_token": False, "global_pool": "avg", "fc_norm": False}


@BACKBONES.register("clip")
class CLIP(ViTVariant):
    """OpenAI CLIP ViT-B/16"""

    meta = BackboneMeta("clip", "vit_base_patch16_clip_quickgelu_224", "vit", "CLIP, Radford et al. ICML 2021",
                        "clip_vitb16_openai_state_dict.pt",
                        "https://github.com/openai/CLIP (ViT-B/16; save clip_model.state_dict() from the released ViT-B-16.pt)",
                        "vit_base_patch16_clip_quickgelu_224.openai", mean=CLIP_MEAN, std=CLIP_STD,
                        notes="tokens after ln_post, before the projection")
    convert = staticmethod(conv.convert_clip)


@BACKBONES.register("blip")
class BLIP(ViTVariant):
    """BLIP ViT-B/16 image encoder"""

    meta = BackboneMeta("blip", "vit_base_patch16_224", "vit", "BLIP, Li et al. ICML 2022", "model_base.pth",
                        "https://storage.googleapis.com/sfr-vision-language-research/BLIP/models/model_base.pth",
                        mean=CLIP_MEAN, std=CLIP_STD)
    convert = staticmethod(conv.convert_blip)


@BACKBONES.register("mocov3")
class MoCoV3(DinoInterpViT):
    """MoCo v3 ViT-B/16 momentum encoder"""

    meta = BackboneMeta("mocov3", "vit_base_patch16_224", "vit", "MoCo v3, Chen et al. ICCV 2021", "vit-b-300ep.pth.tar",
                        "https://dl.fbaipublicfiles.com/moco-v3/vit-b-300ep/vit-b-300ep.pth.tar")
    convert = staticmethod(conv.convert_mocov3)


@BACKBONES.register("ibot")
class IBOT(DinoInterpViT):
    """iBOT ViT-B/16 teacher"""

    meta = BackboneMeta("ibot", "vit_base_patch16_224", "vit", "iBOT, Zhou et al. ICLR 2022", "checkpoint_teacher.pth",
                        "https://github.com/bytedance/ibot (ViT-B/16 teacher checkpoint)")
    convert = staticmethod(conv.convert_ibot)


@BACKBONES.register("dino")
class DINO(DinoInterpViT):
    """DINO ViT-B/16"""

    meta = BackboneMeta("dino", "vit_base_patch16_224", "vit", "DINO, Caron et al. ICCV 2021", "dino_vitbase16_pretrain.pth",
                        "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
                        "vit_base_patch16_224.dino")
    convert = staticmethod(conv.convert_dino)


@BACKBONES.register("dinov2")
class DINOv2(DinoInterpViT):
    """DINOv2 ViT-B/14"""

    meta = BackboneMeta("dinov2", "vit_base_patch14_dinov2", "vit", "DINOv2, Oquab et al. TMLR 2024",
                        "dinov2_vitb14_pretrain.pth",
                        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth",
                        "vit_base_patch14_dinov2.lvd142m", notes="DINOv2 releases ViT-B/14 only (patch 14, stride 14)")
    convert = staticmethod(conv.convert_dinov2)
    timm_kwargs = {"init_values": 1e-5}


@BACKBONES.register("clip_l14")
class CLIPL14(ViTVariant):
    """OpenAI CLIP ViT-L/14"""

    meta = BackboneMeta("clip_l14", "vit_large_patch14_clip_quickgelu_224", "vit", "CLIP ViT-L/14, Radford et al. 2021",
                        "clip_vitl14_openai_state_dict.pt",
                        "https://github.com/openai/CLIP (ViT-L/14; save clip_model.state_dict())",
                        "vit_large_patch14_clip_quickgelu_224.openai", mean=CLIP_MEAN, std=CLIP_STD)
    convert = staticmethod(conv.convert_clip)


@BACKBONES.register("clip_l14_dcr")
class CLIPL14DCR(ViTVariant):
    """DCR-enhanced CLIP ViT-L/14 (github.com/boyuh/DCR)"""

    meta = BackboneMeta("clip_l14_dcr", "vit_large_patch14_clip_quickgelu_224", "vit",
                        "DCR-enhanced CLIP ViT-L/14 (github.com/boyuh/DCR)", "clip_vitl14_dcr_state_dict.pt",
                        "https://github.com/boyuh/DCR (the released CLIP ViT-L/14 weights, OpenAI state-dict layout)",
                        mean=CLIP_MEAN, std=CLIP_STD)
    convert = staticmethod(conv.convert_clip)


@BACKBONES.register("vit_tiny_random")
class ViTTinyRandom(ViTBackbone):
    """ViT-Ti/16, RANDOM INIT (fast tests only)"""

    meta = BackboneMeta("vit_tiny_random", "vit_tiny_patch16_224", "vit", "random init (tests only)", random_init=True)

    def __init__(self, weights: str | Path | None = None, pos_interp: PosInterp = "timm", precision: Precision = "fp32",
                 input_norm: InputNorm = "own"):
        if weights is not None:
            raise UserError("vit_tiny_random is random by definition: drop --weights or pick a real backbone")
        torch.manual_seed(0)
        super().__init__(self.meta, _create(self.meta.arch).eval(), "random-init(seed=0)", pos_interp, precision, input_norm)


def released() -> dict[str, BackboneMeta]:
    """``name -> meta`` of every registered variant that loads released weights (``bench doctor``)."""
    classes = {name: BACKBONES.get(name) for name in BACKBONES.names()}
    return {n: c.meta for n, c in classes.items() if isinstance(c, type) and issubclass(c, ViTVariant)}
