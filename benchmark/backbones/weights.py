"""Finding, identifying and safely loading weight files.

A backbone's weights come, in order, from ``--weights PATH``, from the project's weights folder
(``$I2V_BENCH_WEIGHTS`` or ``~/.cache/i2v-bench/weights/<authors' file name>``), or from timm's hub
cache (offline); failing those, and unless the run is offline, they are fetched
(:mod:`benchmark.backbones.fetch`). If none has them the run stops with one line saying which file to fetch and where to
put it: a benchmark that silently falls back to random weights reports meaningless numbers.

Files are loaded with ``torch.load(weights_only=True)``: a checkpoint that carries pickled code is
refused rather than executed.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import UserError


def weights_dir() -> Path:
    """Folder searched for authors' weight files when ``--weights`` is not given."""
    return Path(os.environ.get("I2V_BENCH_WEIGHTS", Path.home() / ".cache" / "i2v-bench" / "weights"))


def go_offline() -> None:
    """Never reach the network for weights: what ``bench run --offline`` asks (``HF_HUB_OFFLINE=1`` is the same).

    Called where a run starts, never at import, so a library user's process keeps its own setting.
    ``huggingface_hub`` reads the variable once, at its import, so an already imported copy is set too;
    submitit subprocesses inherit the variable.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def is_offline() -> bool:
    """Whether this process may not reach the network for weights (``HF_HUB_OFFLINE``, read as the hub reads it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


HUB_FILES = ("model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin")


def hub_cache_file(tag: str) -> str | None:
    """Path of timm model ``tag``'s weights in the Hugging Face cache, or None; never touches the network."""
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(tag)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg else None
    if not hub_id:
        return None
    hits = (try_to_load_from_cache(hub_id, f) for f in HUB_FILES)
    return next((h for h in hits if isinstance(h, str)), None)


def file_sha256(path: Path, prefix: int = 12) -> str:
    """Short content hash of a file: the identity of its weights in results and cache keys."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()[:prefix]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file as tensors only (``.safetensors`` or a ``weights_only`` torch file)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist: check the --weights path")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises SafetensorError/OSError on corrupt headers
            raise UserError(f"weights file {path} is not a valid safetensors file ({e}): re-download it") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise UserError(
            f"weights file {path} was refused by torch.load(weights_only=True) ({first[:120]}): it holds "
            "pickled code or objects; re-save it as a plain state dict (torch.save(model.state_dict(), ...)) or safetensors"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise UserError(f"weights file {path} cannot be read ({type(e).__name__}): the file is truncated or not a checkpoint") from None
    if not isinstance(obj, dict):
        raise UserError(f"weights file {path} holds a {type(obj).__name__}, not a state dict: save model.state_dict()")
    return obj


def strip_prefix(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Keys starting with ``prefix``, with the prefix removed (others dropped)."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
