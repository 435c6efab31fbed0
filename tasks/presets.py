"""The three published label-propagation protocols as presets, and how a task config picks one.

A task config names a ``preset`` and may override single constants under ``propagation`` (a ``null``
means "the preset's value") and the resolution rule under ``input_size``:

``cosettle``
    The defaults of the Co-Settle authors' companion evaluation code, T-CORE
    ``downstreams/propagation/util.py`` + ``start.py`` (github.com/yafeng19/T-CORE), which runs
    CRW's propagation (``src/test.py``, ``src/utils/test_utils.py``) with temperature 0.7, top-k 7
    (VIP 10), radius 20, 20 context frames and the first frame as long-term memory
    (``long_mem=[0]``); DAVIS resized to 480×880, JHMDB to 320×320 (a 20×20 grid at stride 16),
    VIP with the long side at 880 and the short side floored to a multiple of 64; poses decoded from
    the top 5 heatmap cells (``process_pose(topk=5)``).
``crw``
    Jabri et al., NeurIPS 2020, videowalk ``code/test.py`` + ``code/utils/arguments.py``: top-k 10,
    radius 12, temperature 0.07 (the README's DAVIS command uses 0.05), 20 context frames; the
    video is padded with 20 copies of the first frame, so early targets see frame 0 many times, and
    frame 0 is also long-term memory; the radius is Euclidean and strict (``D < radius``) and does
    not apply to the long-term frame; DAVIS at native size (``--cropSize -1``), JHMDB at 320×320;
    poses from the top 3 cells (``process_pose(topk=3)``).
``dino``
    Caron et al., ICCV 2021, ``eval_video_segmentation.py``: top-k 5, a *square* neighbourhood of
    half-size 12 applied to every context frame, temperature 0.1, the first frame plus the 7 last
    frames (no repetition), first-frame labels downsampled with PIL's nearest-neighbour (``read_seg``),
    each class map min-max normalised before the argmax (``norm_mask``), the label map resized back to
    the annotation size with PIL's nearest (``Image.fromarray(...).resize((ori_w, ori_h), 0)``), frames
    resized to a short side of 480 with the long side floored to a multiple of 64. DINO publishes no VIP/JHMDB protocol: the same
    constants are used there, with CRW's 3-cell pose decoding and 320×320 JHMDB frames.

:func:`resolve` turns a config into the engine constants and the resolution rule, checking every value
against :data:`FIELDS` (the one statement of what each constant may hold, also the type of each task's
``propagation`` block, :func:`overrides_model`); :func:`resolved_config` writes them back into the config so that the stored, hashed config
holds no ``null`` placeholder (the same config with ``temperature: null`` and ``temperature: 0.7``
under the ``cosettle`` preset is one configuration).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from benchmark.errors import UserError
from benchmark.schemas import NonNeg, Pos, PosFloat, Strict

#: What each engine constant may hold: one place, read by :class:`PropagationConfig`'s check (a preset
#: or a resolved config) and by the tasks' ``propagation`` models (:func:`overrides_model`, a user's value).
FIELDS: dict[str, Any] = {
    "topk": Pos,
    "temperature": PosFloat,
    "radius": float,  # <= 0 disables the restriction
    "radius_metric": Literal["euclidean", "square"],
    "n_context": NonNeg,
    "long_memory": bool,
    "mask_long_memory": bool,
    "repeat_first": bool,
    "label_downsample": Literal["bilinear", "nearest"],
    "norm_mask": bool,
    "pose_topk": Pos,
    "pose_sigma": PosFloat,
    "pose_heatmap": Literal["crw", "exact"],
    "pose_coords": Literal["crw", "centre"],
    "frame_resize": Literal["cv2", "antialias"],
    "upsample": Literal["frame", "direct"],
    "index_resize": Literal["cv2", "pil"],
    "tile": NonNeg,  # 0: automatic
}
_ADAPTERS = {key: TypeAdapter(kind, config=ConfigDict(strict=True, allow_inf_nan=False)) for key, kind in FIELDS.items()}


@dataclass(frozen=True)
class PropagationConfig:
    """Constants of one propagation protocol (see the module docstring for their sources).

    Attributes:
        topk: neighbours voting for each target cell, over all context keys together.
        temperature: softmax temperature applied to the top-k cosine similarities.
        radius: neighbourhood size in feature cells; <= 0 disables the restriction.
        radius_metric: ``euclidean`` (CRW: distance < radius) or ``square`` (DINO: |dy|, |dx| <= radius).
        n_context: number of previous frames used as short-term context.
        long_memory: the first frame is always in the context (long-term memory).
        mask_long_memory: the neighbourhood restriction also applies to the long-term frame (DINO).
        repeat_first: the context bank is padded with copies of frame 0 so that every target sees
            ``n_context`` short-term frames (CRW/T-CORE); otherwise early targets see fewer (DINO).
        label_downsample: ``bilinear`` (CRW: cv2 linear resize of the one-hot map) or ``nearest``
            (DINO: nearest resize of the index map) to bring first-frame labels to the grid.
        norm_mask: min-max normalise each upsampled class map before the argmax (DINO).
        pose_topk: heatmap cells averaged to decode a keypoint (JHMDB).
        pose_sigma: Gaussian sigma, in feature cells, of the keypoint heatmaps (CRW ``sigma=0.5``).
        pose_heatmap: ``crw`` (CRW ``draw_labelmap_np``: a 4×4 patch centred on an integer cell, the
            joint's position truncated toward zero, as CRW and T-CORE's JHMDB loaders draw it) or
            ``exact`` (the Gaussian at the joint's sub-cell position; our option).
        pose_coords: pixels ↔ grid mapping of joints: ``crw`` (``x × grid / image``, cell corners, as
            CRW's loader encodes and ``eval_pck.py`` decodes — consistent over the round trip) or
            ``centre`` (pixel centres on cell centres, ``align_corners=False``; our option).
        frame_resize: ``cv2`` (bilinear without antialiasing, what ``cv2.resize`` does in CRW's, T-CORE's
            and DINO's loaders) or ``antialias`` (torchvision-style antialiased bilinear; our option).
        upsample: ``frame`` (soft maps bilinear to the encoder's input frame, argmax, then nearest to
            the annotation size: T-CORE ``vos.py``, DINO ``×16`` bilinear + ``norm_mask``; CRW's native
            size makes both steps one) or ``direct`` (bilinear straight to the annotation size; option).
        index_resize: the nearest-neighbour rule of every index-map resize (the final one to the
            annotation size, and the first-frame labels when ``label_downsample`` is ``nearest``):
            ``cv2`` (``cv2.resize(INTER_NEAREST)``, T-CORE ``vos.py``) or ``pil`` (``Image.resize(..., 0)``,
            DINO ``eval_video_segmentation.py`` ``read_seg`` and the final resize to ``(ori_w, ori_h)``).
            The two differ: 832 → 854 columns (DINO's DAVIS frame back to 480p) take a different
            source column in 415 of 854 (:func:`tasks.propagation.nearest_indices`).
        tile: query tile side in cells, 0 for automatic (speed only: results do not depend on it).
    """

    topk: int
    temperature: float
    radius: float
    radius_metric: str
    n_context: int
    long_memory: bool
    mask_long_memory: bool
    repeat_first: bool
    label_downsample: str
    norm_mask: bool
    pose_topk: int
    pose_sigma: float = 0.5
    pose_heatmap: str = "crw"
    pose_coords: str = "crw"
    frame_resize: str = "cv2"
    upsample: str = "frame"
    index_resize: str = "cv2"
    tile: int = 0

    def __post_init__(self) -> None:
        for key, adapter in _ADAPTERS.items():
            try:
                adapter.validate_python(getattr(self, key))
            except ValidationError as e:
                msg = e.errors()[0]["msg"]
                raise UserError(f"propagation.{key}={getattr(self, key)!r} is refused: {msg[:1].lower()}{msg[1:]}") from None
        if not (self.long_memory or self.n_context > 0):
            raise UserError(f"propagation.n_context must be > 0 when long_memory is false, got {self.n_context}")


_COSETTLE = PropagationConfig(
    topk=7, temperature=0.7, radius=20, radius_metric="euclidean", n_context=20, long_memory=True,
    mask_long_memory=False, repeat_first=True, label_downsample="bilinear", norm_mask=False, pose_topk=5,
)
_CRW = PropagationConfig(
    topk=10, temperature=0.07, radius=12, radius_metric="euclidean", n_context=20, long_memory=True,
    mask_long_memory=False, repeat_first=True, label_downsample="bilinear", norm_mask=False, pose_topk=3,
)
_DINO = PropagationConfig(
    topk=5, temperature=0.1, radius=12, radius_metric="square", n_context=7, long_memory=True,
    mask_long_memory=True, repeat_first=False, label_downsample="nearest", norm_mask=True, pose_topk=3,
    index_resize="pil",
)

#: preset -> dataset -> (engine constants, input-resolution rule). Resolution rules:
#: ``["fixed", H, W]``, ``["short", S, M]`` (short side S, long side floored to a multiple of M),
#: ``["long", L, M]`` (long side L, short side floored to a multiple of M), ``["native"]``.
PRESETS: dict[str, dict[str, tuple[PropagationConfig, list]]] = {
    "cosettle": {
        "davis": (_COSETTLE, ["fixed", 480, 880]),
        "vip": (dataclasses.replace(_COSETTLE, topk=10), ["long", 880, 64]),
        "jhmdb": (_COSETTLE, ["fixed", 320, 320]),
    },
    "crw": {
        "davis": (_CRW, ["native"]),
        "vip": (_CRW, ["native"]),
        "jhmdb": (_CRW, ["fixed", 320, 320]),
    },
    "dino": {
        "davis": (_DINO, ["short", 480, 64]),
        "vip": (_DINO, ["short", 480, 64]),
        "jhmdb": (_DINO, ["fixed", 320, 320]),
    },
}


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _typed(key: str, kind: type, value: Any, where: str) -> Any:
    """``value`` as the field's type; a bool for a number, a fraction for an integer or a number for a
    name is refused (``topk: 2.5`` must not silently become 2)."""
    ok = (isinstance(value, bool) if kind is bool else isinstance(value, str) if kind is str
          else isinstance(value, (int, float)) and not isinstance(value, bool)
          and (kind is float or float(value).is_integer()))
    if not ok:
        raise UserError(f"{where}.propagation.{key} must be {_KINDS[kind]}, got {value!r}: fix it in "
                        f"configs/tasks/{where}.yaml or with --set {where}.propagation.{key}=VALUE")
    return kind(value)


RULE_HELP = ("use [fixed, H, W], [short, S, M], [long, L, M] or [native] with positive integers, "
             "or null for the preset's rule")


def _is_rule(rule: Any) -> bool:
    arity = {"fixed": 2, "short": 2, "long": 2, "native": 0}
    return (isinstance(rule, (list, tuple)) and len(rule) > 0 and rule[0] in arity and len(rule) == 1 + arity[rule[0]]
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in rule[1:]))


def check_rule(rule: Any, where: str) -> list:
    """A resolution rule checked for shape: ``[fixed, H, W]``, ``[short, S, M]``, ``[long, L, M]``, ``[native]``."""
    if not _is_rule(rule):
        raise UserError(f"{where}.input_size {rule!r}: {RULE_HELP}")
    return list(rule)


def _rule_value(rule: list) -> list:
    if not _is_rule(rule):
        raise ValueError(RULE_HELP)
    return rule


#: a task config's ``input_size``: a resolution rule, or null for the preset's
Rule = Optional[Annotated[list, AfterValidator(_rule_value)]]
PresetName = Literal[tuple(PRESETS)]  # type: ignore[valid-type]


def overrides_model(name: str, keys: str) -> type[BaseModel]:
    """The typed model of a task's ``propagation`` block: the (space-separated) ``keys`` its YAML lists,
    each ``null`` (the preset's value) or a value :data:`FIELDS` allows; every key required, as the YAML
    holds every value."""
    return create_model(name, __base__=Strict, **{key: (Optional[FIELDS[key]], ...) for key in keys.split()})


def resolve(config: dict[str, Any], dataset: str) -> tuple[PropagationConfig, list]:
    """The engine constants and resolution rule of a task config: its preset, then its overrides.

    ``config`` holds ``preset`` (a :data:`PRESETS` name), ``propagation`` (a dict whose non-null
    values replace the preset's constants) and ``input_size`` (null for the preset's rule). Every
    value is checked for type here and for range by :class:`PropagationConfig`.
    """
    name = config.get("preset")
    if name not in PRESETS:
        raise UserError(f"{dataset}: unknown preset {name!r}; choose one of {', '.join(PRESETS)} (key 'preset')")
    base, size = PRESETS[name][dataset]
    hints = typing.get_type_hints(PropagationConfig)
    values = dataclasses.asdict(base)
    for key, value in (config.get("propagation") or {}).items():
        if key not in hints:
            raise UserError(f"{dataset}.propagation: unknown key {key!r}; valid keys: {', '.join(hints)}")
        if value is not None:
            values[key] = value
    typed = {key: _typed(key, hints[key], value, dataset) for key, value in values.items()}
    try:
        engine = PropagationConfig(**typed)
    except UserError as e:
        raise UserError(f"{dataset}: {e}") from None
    if config.get("input_size") is not None:
        size = config["input_size"]
    return engine, check_rule(size, dataset)


def resolved_config(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """``config`` with every ``null`` under ``propagation`` and ``input_size`` replaced by the value the
    preset gives it, so the config a result stores and hashes names every constant the run used.

    Only the ``propagation`` keys the config lists are written (each task's YAML lists the ones that
    matter to it). Idempotent: resolving a resolved config returns it unchanged.
    """
    engine, rule = resolve(config, dataset)
    values = dataclasses.asdict(engine)
    return {**config, "propagation": {key: values[key] for key in (config.get("propagation") or {})},
            "input_size": rule}


def input_size(rule: list, height: int, width: int, stride: int) -> tuple[int, int]:
    """Frame size to feed the encoder for a ``height × width`` video under a resolution rule.

    Both sides are finally floored to a multiple of ``stride`` so that the token grid covers the
    whole resized frame (a no-op for every published size).
    """
    kind = check_rule(rule, "propagation")[0]
    if kind == "fixed":
        h, w = int(rule[1]), int(rule[2])
    elif kind == "short":  # DINO read_frame(): short side S, long side (S * long / short) // 64 * 64
        s, m = int(rule[1]), int(rule[2])
        if height > width:
            h, w = int(s * height / width) // m * m, s
        else:
            h, w = s, int(s * width / height) // m * m
    elif kind == "long":  # T-CORE vos.py with one crop size: long side L, short side floored to M
        s, m = int(rule[1]), int(rule[2])
        if width > height:
            h, w = int(height * s / width) // m * m, s
        else:
            h, w = s, int(width * s / height) // m * m
    else:  # native
        h, w = height, width
    h, w = h // stride * stride, w // stride * stride
    if h < stride or w < stride:
        raise UserError(f"input_size {rule!r} gives {h}x{w} for a {height}x{width} video: too small for stride {stride}")
    return h, w
