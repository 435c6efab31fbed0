"""Running (method, backbone, seed) jobs over a list of tasks, skipping what is already done.

One job trains its method at most once (the method's own content-addressed checkpoint makes reruns
free) and then evaluates every task still missing, writing one record per task as soon as it is done.
So a job killed half-way loses at most the task in flight, and a rerun ("only missing", as MTEB
does) does exactly the remaining work.

``inline`` (the default) calls :class:`BenchJob` in-process; every other executor submits it through
submitit via :mod:`benchmark.sweep` (``debug`` in-process, ``local`` subprocesses, ``slurm`` a job
array). A pre-empted Slurm job is requeued through :meth:`BenchJob.checkpoint`, the dinov2 pattern.
"""
from __future__ import annotations

import random
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmark.errors import UserError


@dataclass
class RunSpec:
    """Everything one job needs, picklable for submitit.

    Attributes:
        method, backbone: registry names.
        tasks: task names to evaluate.
        seed: seed of this job.
        results: result folder.
        data_root: data root (see :class:`benchmark.context.RunContext`).
        train_data: unlabelled training videos for methods that train.
        datasets: explicit ``dataset -> folder`` overrides.
        weights: backbone weight file, or None for the weights folder / hub cache.
        overrides: ``section -> {key: value}``; a section is the method, backbone or a task name.
        plugins: plugin files to import before anything is looked up (also in a submitit subprocess).
        force: recompute results that exist.
        device: ``auto``, ``cpu`` or ``cuda[:k]``.
        cache: serve frozen-encoder tokens from the shared feature cache (:mod:`benchmark.cache`, under
            :func:`benchmark.cache.default_root` of ``results``); never part of a result's config hash.
    """

    method: str
    backbone: str
    tasks: list[str]
    seed: int = 0
    results: Path = Path("results")
    data_root: Path | None = None
    train_data: Path | None = None
    datasets: dict[str, str] = field(default_factory=dict)
    weights: str | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    force: bool = False
    device: str = "auto"
    progress: bool = True
    cache: bool = True


def load_plugins(plugins: list[str]) -> None:
    from benchmark.registry import load_plugin

    for plugin in plugins:
        load_plugin(plugin)


def resolve(spec: RunSpec) -> dict[str, Any]:
    """Resolved configs and per-task config hashes, without building any model.

    Raises:
        UserError: unknown names, unknown override sections or keys, wrong value types.
    """
    from benchmark.config import config_hash, defaults, merge, suggest
    from benchmark.registry import BACKBONES, METHODS, TASKS

    load_plugins(spec.plugins)
    method_cls = METHODS.get(spec.method)
    BACKBONES.check(spec.backbone)
    registered = set(METHODS.names()) | set(BACKBONES.names()) | set(TASKS.names())
    for section in spec.overrides:
        if section not in registered:  # a shared config may carry other methods' sections; a typo may not
            raise UserError(
                f"--set/--config section {section!r} names no method, backbone or task: {suggest(section, registered)}"
                f"sections are the method ({spec.method}), the backbone ({spec.backbone}) or a task ({', '.join(spec.tasks)})"
            )
    mcfg = merge(defaults("method", spec.method, method_cls), spec.overrides.get(spec.method, {}), f"method {spec.method}")
    bopts = merge(defaults("backbone", spec.backbone, BACKBONES.get(spec.backbone)),
                  spec.overrides.get(spec.backbone, {}), f"backbone {spec.backbone}")
    tasks = {}
    for name in spec.tasks:
        cls = TASKS.get(name)
        tcfg = merge(defaults("task", name, cls), spec.overrides.get(name, {}), f"task {name}")
        ident = {
            "method": spec.method, "method_config": mcfg, "backbone": spec.backbone, "backbone_options": bopts,
            "weights": spec.weights, "task": name, "task_config": tcfg, "seed": spec.seed,
            "data": _data_identity(spec, cls.meta.dataset),
            "train_data": str(spec.train_data) if getattr(method_cls, "trains", False) else None,
        }
        tasks[name] = {"cls": cls, "config": tcfg, "hash": config_hash(ident)}
    return {"method_cls": method_cls, "method_config": mcfg, "backbone_options": bopts, "tasks": tasks}


def _data_identity(spec: RunSpec, dataset: str) -> str | None:
    if dataset in spec.datasets:
        return str(Path(spec.datasets[dataset]).resolve())
    return str(Path(spec.data_root).resolve()) if spec.data_root else None


def pending_tasks(spec: RunSpec, resolved: dict[str, Any] | None = None) -> list[str]:
    """Tasks of ``spec`` without a complete result for their current config."""
    from benchmark.results import is_complete, result_path

    resolved = resolved or resolve(spec)
    if spec.force:
        return list(spec.tasks)
    return [
        t for t in spec.tasks
        if not is_complete(result_path(spec.results, spec.method, spec.backbone, t, spec.seed), resolved["tasks"][t]["hash"])
    ]


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for but no CUDA device is visible: use --device cpu")
    return torch.device(name)


class BenchJob:
    """A picklable callable: run one (method, backbone, seed) over its missing tasks.

    Returns a list of ``(task, status, path_or_message)``; a user error becomes one ``error`` entry so
    the parent process can print it as one line whatever executor ran the job. With ``keep_going`` a
    task that raises becomes a ``failed`` entry carrying its traceback, and the next task runs.
    """

    keep_going = False  # inline runs stop at the first error; sweeps (LockedJob) record it per task and go on

    def __init__(self, spec: RunSpec):
        self.spec = spec

    def __call__(self) -> list[tuple[str, str, str]]:
        try:
            return self._run()
        except UserError as e:
            return [("*", "error", str(e))]

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Requeue on pre-emption (submitit calls this on SIGUSR2/timeout); finished tasks are skipped."""
        import submitit

        return submitit.helpers.DelayedSubmission(BenchJob(self.spec))

    def _run(self) -> list[tuple[str, str, str]]:
        from benchmark import provenance
        from benchmark.backbones import build_backbone
        from benchmark.context import RunContext
        from benchmark.results import SCHEMA_VERSION, result_path, write_json_atomic

        spec = self.spec
        resolved = resolve(spec)
        todo = pending_tasks(spec, resolved)
        done = [(t, "present", str(result_path(spec.results, spec.method, spec.backbone, t, spec.seed)))
                for t in spec.tasks if t not in todo]
        if not todo:
            return done
        device = _device(spec.device)
        seed_everything(spec.seed)
        t0 = time.time()
        backbone = build_backbone(spec.backbone, spec.weights, device, **(resolved["backbone_options"] or {}))
        method = resolved["method_cls"](backbone, resolved["method_config"])
        cache = None
        if spec.cache:
            from benchmark.cache import default_root, install

            cache = install(method, default_root(spec.results), resolved["backbone_options"])
        work_dir = Path(spec.results) / spec.method / spec.backbone / "artifacts"
        ctx = RunContext(
            data_root=spec.data_root, train_data=spec.train_data, work_dir=work_dir, device=device, seed=spec.seed,
            datasets={k: Path(v) for k, v in spec.datasets.items()}, progress=spec.progress,
            checkpoint_root=Path(spec.results) / "checkpoints",
        )
        build_s = time.time() - t0
        t0 = time.time()
        training = method.fit(ctx) or {}
        fit_s = time.time() - t0
        prov = provenance.collect(device)
        for name in todo:
            task_info = resolved["tasks"][name]
            task = task_info["cls"](task_info["config"])
            seed_everything(spec.seed)
            started = datetime.now(timezone.utc)
            t0 = time.time()
            cache_before = replace(cache.stats) if cache else None
            try:
                out = task.evaluate(method, replace(ctx, work_dir=work_dir / name))
            except Exception:  # in a sweep one task's failure must not cost the job's other tasks
                if not self.keep_going:
                    raise
                done.append((name, "failed", traceback.format_exc()))
                continue
            eval_s = time.time() - t0
            if cache_before is not None:
                out.details["feature_cache"] = cache.stats.since(cache_before)
            record = {
                "schema_version": SCHEMA_VERSION,
                "method": spec.method,
                "backbone": spec.backbone,
                "backbone_label": backbone.label,
                "task": name,
                "seed": spec.seed,
                "status": "ok",
                "main_metric": task.meta.main_metric,
                "higher_is_better": task.meta.higher_is_better,
                "metrics": out.metrics,
                "details": out.details,
                "config": {
                    "method": resolved["method_config"], "backbone": resolved["backbone_options"],
                    "task": task_info["config"], "weights": spec.weights,
                    "data": _data_identity(spec, task.meta.dataset), "train_data": str(spec.train_data or ""),
                },
                "config_hash": task_info["hash"],
                "weights_id": backbone.weights_id,
                "training": training,
                "provenance": {
                    **prov, "started": started.isoformat(), "finished": datetime.now(timezone.utc).isoformat(),
                    "peak_memory_mb": provenance.peak_memory_mb(device),
                },
                "artifacts": out.artifacts,
                "timings": {"build_s": build_s, "fit_s": fit_s, "eval_s": eval_s},
            }
            path = result_path(spec.results, spec.method, spec.backbone, name, spec.seed)
            write_json_atomic(path, record)
            main = out.metrics.get(task.meta.main_metric)
            shown = f"{task.meta.main_metric}={main:.4f}" if isinstance(main, (int, float)) else "done"
            print(f"  {spec.method} x {backbone.label} x {name} (seed {spec.seed}): {shown} [{eval_s:.1f} s]",
                  file=sys.stderr)
            done.append((name, "ok", str(path)))
        return done
