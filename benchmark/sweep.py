"""Sweeps: a methods × backbones × seeds grid of jobs, run through submitit, resumable at any point.

One job per (method, backbone, seed) evaluates all its tasks, so a method trains once and every task
reuses it. What is complete (:func:`benchmark.runner.pending_tasks`) is skipped, MTEB's "only missing"
resume, so rerunning the same command after a crash, a kill or a failure does only what is left. A
job that fails becomes one ``status="failed"`` record per task it left undone, holding the traceback;
the result store counts only ``ok`` records as complete, so the rerun retries exactly the failures.

Each job holds an exclusive lock (``flock``) on ``<results>/jobs/locks/<method>__<backbone>__seed<k>``
while it runs. submitit's local controllers outlive their parent by design, so after a sweep is killed
its jobs go on; the rerun's copy of such a job waits for the lock, finds the results written and does
nothing, and no result is ever computed twice at the same time. The kernel drops the lock of a dead
process, so a lock never goes stale.
"""
from __future__ import annotations

import os
import re
import socket
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from benchmark.config import CONFIG_DIR, merge, read_yaml
from benchmark.errors import UserError
from benchmark.runner import BenchJob, Outcome, RunSpec, TaskPlan, lock_path, pending_tasks, resolve, store  # noqa: F401
from benchmark.sweep_status import Ledger

EXECUTORS = ("inline", "debug", "local", "slurm")
POLL_S = 0.5


@dataclass
class Planned:
    """One job of the grid and what its results folder already holds for it."""

    spec: RunSpec
    todo: list[str]
    present: list[str]
    retries: list[str] = field(default_factory=list)  # tasks of ``todo`` whose last attempt failed
    stale: list[str] = field(default_factory=list)  # tasks of ``todo`` whose record has another identity (kept beside)
    plans: dict[str, TaskPlan] = field(default_factory=dict)  # each task's identity, variant and record path

    @property
    def key(self) -> str:
        return f"{self.spec.method} x {self.spec.backbone} (seed {self.spec.seed})"


@dataclass
class SweepReport:
    """What a sweep did: jobs run, results written, failures (key → one-line reason)."""

    jobs: int = 0
    written: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def grid(fields: dict[str, Any], methods: list[str], backbones: list[str], seeds: list[int]) -> list[RunSpec]:
    """One spec per (method, backbone, seed); ``fields`` are the other :class:`RunSpec` fields.

    An override section naming a method or backbone of the grid goes only to that method's or
    backbone's jobs, so each job's spec (pickled into its submitit folder) says what that job runs;
    task sections go to every job.
    """
    require_grid(methods, backbones)
    named = set(methods) | set(backbones)
    overrides = fields.get("overrides", {})
    return [
        RunSpec(**{**fields, "overrides": {k: v for k, v in overrides.items() if k not in named - {m, b}}},
                method=m, backbone=b, seed=s)
        for m in methods for b in backbones for s in seeds
    ]


def require_grid(methods: list[str], backbones: list[str]) -> None:
    if not methods or not backbones:
        raise UserError("a sweep needs --methods a,b and --backbones x,y (see `bench list methods`, `bench list backbones`)")


def plan(specs: list[RunSpec]) -> list[Planned]:
    """What each job still has to do; resolving every spec first makes a bad name fail before any submission."""
    from benchmark.results import read_record

    out = []
    for spec in specs:
        resolved = resolve(spec)
        todo = pending_tasks(spec, resolved)
        retries, stale = [], []
        for task in todo:
            record = read_record(resolved["tasks"][task].path)
            if record is not None and record.status == "failed":
                retries.append(task)
            elif record is not None and record.identity != resolved["tasks"][task].identity:
                stale.append(task)
        out.append(Planned(spec, todo, [t for t in spec.tasks if t not in todo], retries, stale, resolved["tasks"]))
    return out


def describe(planned: list[Planned]) -> str:
    """The plan as text: one line per job, then its size."""
    lines = []
    for p in planned:
        parts = []
        if p.todo:
            parts.append("run " + ", ".join(p.todo))
        if p.present:
            parts.append("present " + ", ".join(p.present))
        if p.retries:
            parts.append("retry after failure " + ", ".join(p.retries))
        if p.stale:
            parts.append("recompute stale " + ", ".join(p.stale))
        lines.append(f"  {p.key}: {'; '.join(parts)}")
    jobs = [p for p in planned if p.todo]
    todo = sum(len(p.todo) for p in planned)
    present = sum(len(p.present) for p in planned)
    retries = sum(len(p.retries) for p in planned)
    lines.append(
        f"plan: {len(planned)} jobs in the grid, {len(jobs)} to submit; {todo} task evaluations to run "
        f"({retries} retries of failures), {present} results already present"
    )
    return "\n".join(lines)


class LockedJob(BenchJob):
    """:class:`BenchJob` run under the job's exclusive lock (see the module docstring); a failing task is
    recorded and the job's other tasks still run. In a multi-task job (``slurm.tasks_per_node``, DDP)
    rank 0 takes the lock and the other ranks wait for it at a barrier, so all see the same results."""

    keep_going = True

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Requeue on pre-emption as a locked job again (finished tasks are skipped on restart)."""
        import submitit

        return submitit.helpers.DelayedSubmission(LockedJob(self.spec))


def executor_config(executor: str, path: Path | None = None) -> dict[str, Any]:
    """The ``executor`` section of ``configs/executor.yaml``, updated with the same section of ``path``."""
    if executor not in EXECUTORS:
        raise UserError(f"unknown --executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    base = read_yaml(CONFIG_DIR / "executor.yaml").get(executor, {}) or {}
    if path is None:
        return base
    user = read_yaml(Path(path))
    if not isinstance(user, dict):
        raise UserError(f"executor config {path} must map executor names (local, slurm) to key: value maps")
    section = user.get(executor) or {}
    if not isinstance(section, dict):
        raise UserError(f"executor config {path} section {executor} must be a key: value map")
    out = merge(base, {k: v for k, v in section.items() if k != "additional"}, f"{path} section {executor}")
    if "additional" in section:  # free sbatch options (any key sbatch knows), so not checked against the defaults
        if not isinstance(section["additional"], dict):
            raise UserError(f"executor config {path}: {executor}.additional must map sbatch options to values, e.g. {{qos: high}}")
        out["additional"] = dict(section["additional"])
    return out


def slurm_parameters(cfg: dict[str, Any], max_parallel: int | None) -> dict[str, Any]:
    """submitit ``AutoExecutor`` parameters from the ``slurm`` section; ``--max-parallel`` bounds the array."""
    params = {
        "timeout_min": cfg["timeout_min"], "gpus_per_node": cfg["gpus_per_node"], "cpus_per_task": cfg["cpus_per_task"],
        "tasks_per_node": cfg["tasks_per_node"],
        "mem_gb": cfg["mem_gb"], "name": "i2v-bench",
        "slurm_array_parallelism": max_parallel or cfg["array_parallelism"],
        "slurm_signal_delay_s": cfg["signal_delay_s"],
    }
    if cfg.get("partition"):
        params["slurm_partition"] = cfg["partition"]
    if cfg.get("additional"):
        params["slurm_additional_parameters"] = dict(cfg["additional"])
    return params


def local_gpus() -> list[int]:
    """GPU indices a local job may be pinned to (submitit's local executor sets CUDA_VISIBLE_DEVICES itself)."""
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and all(v.strip().isdigit() for v in visible.split(",") if v.strip()):
        return [int(v) for v in visible.split(",") if v.strip()]
    return list(range(torch.cuda.device_count()))


def failure_record(planned: Planned, task: str, reason: str, trace: str, job: dict[str, Any]):
    """The record a failed job leaves for one task: never complete, so a rerun retries it."""
    from benchmark.record import ResultRecord

    spec, plan = planned.spec, planned.plans[task]
    return ResultRecord(
        method=spec.method, backbone=spec.backbone, task=task, seed=spec.seed, status="failed", variant=plan.variant,
        identity=plan.identity, versions=plan.parts["versions"], weights_digest=plan.parts["weights_digest"],
        data_fingerprint=plan.parts["data_fingerprint"], config=plan.parts["config"], overrides_applied=plan.overrides,
        error=reason, traceback=trace, job=job,
        provenance={"hostname": socket.gethostname(), "finished": datetime.now(timezone.utc).isoformat(), "argv": sys.argv},
    )


def record_failure(planned: Planned, reason: str, trace: str, job: dict[str, Any], tasks: list[str] | None = None) -> None:
    """Write failure records for ``tasks``, by default the job's tasks still incomplete (finished ones stay
    ``ok``; a complete record of another identity at the same path is kept beside as stale)."""
    spec = planned.spec
    for task in tasks if tasks is not None else pending_tasks(spec, resolve(spec)):
        store(planned.plans[task].path, failure_record(planned, task, reason, trace, job))


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*$", re.M)


def reason_of(text: str) -> str:
    """One line for a failure: the last exception line of a traceback (submitit wraps it in log paths),
    else the first two lines (submitit's "Job … has not produced any output (state: INTERRUPTED)")."""
    found = [m.group(0) for m in EXCEPTION_LINE.finditer(text)]
    if found:
        return found[-1].strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2]) or "unknown error"


class _Running:
    """A submitted job: its plan entry, the submitit job (None inline) and its GPU slot."""

    def __init__(self, planned: Planned, job: Any = None, slot: int = 0):
        self.planned, self.job, self.slot = planned, job, slot

    def info(self, executor: str) -> dict[str, Any]:
        if self.job is None:
            return {"executor": executor}
        return {"executor": executor, "job_id": str(self.job.job_id), "stdout": str(self.job.paths.stdout),
                "stderr": str(self.job.paths.stderr), "result": str(self.job.paths.result_pickle)}


def run(planned: list[Planned], executor: str, folder: Path, cfg: dict[str, Any], max_parallel: int | None = None,
        progress: bool = True) -> SweepReport:
    """Submit the jobs that have work, wait for them with a progress bar, record failures.

    ``inline`` and ``debug`` run jobs one after another in this process (``debug`` is submitit's
    debugging executor: it opens pdb where a job fails); ``local`` keeps at most
    ``max_parallel`` subprocesses alive (one GPU each when GPUs are visible); ``slurm`` submits one job
    array whose parallelism is bounded by ``slurm_array_parallelism``. Job logs go to a fresh folder
    ``folder/sweep-<time>-<pid>`` per call, so a reused process id never meets an older job's files.
    """
    from tqdm import tqdm

    todo = deque(p for p in planned if p.todo)
    if executor == "slurm" and todo:
        from benchmark.slurm import prepare

        cfg = prepare(cfg)
    report = SweepReport(jobs=len(todo))
    if not todo:
        return report
    folder = Path(folder) / f"sweep-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    bar = tqdm(total=len(todo), unit="job", desc="sweep", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    ledger = Ledger(folder, executor, [(p.key, p.spec) for p in todo])  # what `bench sweep --status` reads

    def finish(run_: _Running, outcome: list[Outcome] | None, error: str | None) -> None:
        key = run_.planned.key
        if error is None and outcome is not None:
            errors = [o.message for o in outcome if o.status == "error"]
            if errors:
                error = errors[0]
            else:
                report.written += sum(o.status == "ok" for o in outcome)
                for o in outcome:
                    if o.status == "failed":  # one task failed, the job's others ran: record just that task
                        reason = reason_of(o.message)
                        record_failure(run_.planned, reason, o.message, run_.info(executor), tasks=[o.task])
                        report.failures[f"{key}, task {o.task}"] = reason
                        bar.write(f"  FAILED {key}, task {o.task}: {reason}", file=sys.stderr)
        if error is not None:
            reason = reason_of(error)
            record_failure(run_.planned, reason, error, run_.info(executor))
            report.failures[key] = reason
            bar.write(f"  FAILED {key}: {reason}", file=sys.stderr)
        ledger.finished(key, next((v for k, v in report.failures.items() if k.startswith(key)), None))
        bar.set_postfix(failed=len(report.failures), refresh=False)
        bar.update(1)

    try:
        if executor in ("inline", "debug"):
            _run_in_process(todo, executor, folder, finish, ledger)
        else:
            _run_submitit(todo, executor, folder, cfg, max_parallel, finish, ledger)
    finally:
        bar.close()
    return report


def _run_in_process(todo: deque[Planned], executor: str, folder: Path, finish: Callable, ledger: Ledger) -> None:
    ex = None
    if executor == "debug":
        import submitit

        ex = submitit.AutoExecutor(folder=str(folder), cluster="debug")
    while todo:
        planned = todo.popleft()
        job = LockedJob(planned.spec)
        running = _Running(planned)
        try:
            if ex is None:
                ledger.submitted([(planned.key, {"job_id": os.getpid()})])
                outcome = job()
            else:
                running.job = ex.submit(job)
                ledger.submitted([(planned.key, running.info(executor))])
                outcome = running.job.result()
        except Exception:  # a failing job must not end the sweep: it is recorded and the rest goes on
            finish(running, None, traceback.format_exc())
            continue
        finish(running, outcome, None)


def submit_slurm(todo: list[Planned], folder: Path, cfg: dict[str, Any], max_parallel: int | None) -> list[Any]:
    """Submit every job as one Slurm array (bounded by ``slurm_array_parallelism``); returns the submitit jobs.

    A refused submission is one line quoting ``sbatch`` (submitit would print its stderr, then raise).
    """
    import contextlib
    import io

    import submitit

    ex = submitit.AutoExecutor(folder=str(Path(folder) / "%j"), cluster="slurm",
                               slurm_max_num_timeout=int(cfg.get("max_num_timeout", 3)))  # 3: submitit's default
    ex.update_parameters(**slurm_parameters(cfg, max_parallel))
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), ex.batch():
            jobs = [ex.submit(LockedJob(p.spec)) for p in todo]
    except submitit.core.utils.FailedJobError as e:
        refusal = " ".join((str(e) or said.getvalue()).split()) or "no message"
        raise UserError(f"sbatch refused the sweep's job array ({refusal}): fix the slurm section of "
                        "configs/executor.yaml with --executor-config FILE") from None
    return jobs


def _run_submitit(todo: deque[Planned], executor: str, folder: Path, cfg: dict[str, Any], max_parallel: int | None,
                  finish: Callable, ledger: Ledger) -> None:
    import submitit

    gpus: list[int] = []
    poll = None
    if executor == "slurm":
        from benchmark.slurm import StatePoll

        running = [_Running(p, job) for p, job in zip(todo, submit_slurm(list(todo), folder, cfg, max_parallel))]
        todo.clear()
        ledger.submitted([(r.planned.key, r.info(executor)) for r in running])
        window = len(running)
        poll = StatePoll()
    else:
        gpus = local_gpus()
        window = max(1, max_parallel or cfg.get("max_parallel") or len(gpus) or 1)
        running = []
    try:
        while todo or running:
            while todo and len(running) < window:
                slot = min(set(range(window)) - {r.slot for r in running})
                ex = submitit.LocalExecutor(folder=str(folder))
                params: dict[str, Any] = {"timeout_min": cfg["timeout_min"]}
                if gpus:
                    params.update(gpus_per_node=1, visible_gpus=[gpus[slot % len(gpus)]])
                ex.update_parameters(**params)
                planned = todo.popleft()
                running.append(_Running(planned, ex.submit(LockedJob(planned.spec)), slot))
                ledger.submitted([(planned.key, running[-1].info(executor))])
            if poll is not None:
                poll.refresh([r.job for r in running])
            for r in [r for r in running if (poll.done(r.job) if poll else r.job.done())]:
                running.remove(r)
                lost = poll.lost(r.job) if poll else None
                if lost:  # ended without a result file (cancelled, node failure, killed): submitit would wait forever
                    finish(r, None, lost)
                    continue
                try:
                    outcome = r.job.task(0).result()  # rank 0 alone evaluates and writes (DDP: a task per GPU)
                except Exception as e:  # FailedJobError / UncompletedJobError carry the job's traceback or stderr
                    finish(r, None, str(e) or type(e).__name__)
                else:
                    finish(r, outcome, None)
            time.sleep(POLL_S if running else 0)
    except KeyboardInterrupt:
        if executor == "local":  # local subprocesses would outlive us: stop them (their finished tasks are kept)
            for r in running:
                r.job.cancel(check=False)
        raise
