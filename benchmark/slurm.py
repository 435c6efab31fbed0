"""What `bench sweep --executor slurm` learns from the cluster before and while its jobs run.

* **Requests the partition can grant.** ``sbatch --gpus-per-node=1`` on a partition without GPU GRES
  is refused ("Invalid generic resource (gres) specification"), and a request above a node's CPUs or
  memory is refused too. :func:`fit_to_partition` reads the partition's nodes from ``sinfo`` and asks
  for no GPUs where it has none, at most a node's CPUs (over its ``tasks_per_node``) and memory, saying
  so in one line; more GPUs than a node holds is a :class:`UserError` naming ``slurm.gpus_per_node``,
  and so is a DDP job (``tasks_per_node > 1``) that is not one task per requested GPU.
* **Job states without accounting.** Many clusters run without accounting storage, where submitit's
  ``sacct`` calls fail and it warns on every poll. The sweep therefore never asks submitit for a
  state before a job's result file exists; it reads states from ``squeue`` (the controller's own
  view, kept for ``MinJobAge`` after a job ends) and says once that accounting is off.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.errors import UserError

CLIENTS = ("sbatch", "srun", "squeue", "sinfo", "scontrol")
# states after which a job never runs again (a requeued job passes through REQUEUED/PENDING instead)
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                      "BOOT_FAIL", "DEADLINE", "PREEMPTED", "REVOKED", "SPECIAL_EXIT"})
GONE = "GONE"  # the controller no longer knows the job (purged after MinJobAge)


def _call(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def require_clients() -> None:
    """One line, not submitit's traceback, where this machine has no Slurm commands."""
    missing = [c for c in CLIENTS if shutil.which(c) is None]
    if missing:
        raise UserError(f"--executor slurm needs Slurm's {', '.join(missing)} on PATH and this machine has "
                        "none: run the sweep on a Slurm login node, or use --executor local")


@dataclass
class Partition:
    """The largest node of a partition, as ``sinfo`` reports it."""

    name: str
    cpus: int
    mem_gb: int
    gpus: int
    gres: str
    max_minutes: int | None = None  # the partition's time limit (sinfo %l); None: unlimited


def gpu_count(gres: str) -> int:
    """GPUs in a node's GRES string: ``(null)``, ``gpu:4``, ``gpu:a100:4(S:0-1),shard:8`` …"""
    plain = re.sub(r"\([^)]*\)", "", gres)
    return sum(int(p[-1]) for p in (item.split(":") for item in plain.split(","))
               if p[0] == "gpu" and len(p) > 1 and p[-1].isdigit())


def minutes(limit: str) -> int | None:
    """A Slurm time limit as sinfo prints it (``infinite``, ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) in
    whole minutes (seconds rounded down, at least 1); None for no limit or a form it does not know."""
    days, _, clock = limit.strip().rpartition("-")
    parts = clock.split(":")
    if not all(p.isdigit() for p in parts) or (days and not days.isdigit()) or len(parts) > 3:
        return None
    values = [int(p) for p in parts]
    if days:  # D-HH, D-HH:MM, D-HH:MM:SS
        h, m, sec = (values + [0, 0])[:3]
    else:  # MM, MM:SS, HH:MM:SS
        h, m, sec = {1: (0, values[0], 0), 2: (0, *values), 3: tuple(values)}[len(values)]
    return max(1, (int(days or 0) * 24 + h) * 60 + m + sec // 60)


def partition_info(name: str | None) -> Partition | None:
    """The named (else the default) partition's largest node; None where ``sinfo`` lists no default.

    Raises:
        UserError: ``sinfo`` fails (no controller reachable: sbatch would fail the same way, later), or
            the named partition does not exist.
    """
    conf = os.environ.get("SLURM_CONF")
    if conf and not Path(conf).is_file():  # Slurm's clients retry a missing config for 60 s before failing
        raise UserError(f"SLURM_CONF={conf}: no such file: point it at the cluster's slurm.conf or unset it")
    try:
        out = _call("sinfo", "-h", "-N", "-o", "%P|%c|%m|%G|%l")
    except subprocess.TimeoutExpired:
        raise UserError("--executor slurm: sinfo had no answer from the Slurm controller within 60 s: check that "
                        "slurmctld responds (`scontrol ping`), or use --executor local") from None
    if out.returncode != 0:
        said = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
        raise UserError(f"--executor slurm: sinfo cannot reach the Slurm controller ({said}): check SLURM_CONF "
                        "and that slurmctld runs, or use --executor local")
    rows = [line.split("|") for line in out.stdout.splitlines() if line.count("|") == 4]
    names = sorted({r[0].rstrip("*") for r in rows})
    chosen = [r for r in rows if (r[0].rstrip("*") == name if name else r[0].endswith("*"))]
    if not chosen:
        if name:
            raise UserError(f"executor config slurm.partition={name!r}: sinfo lists no such partition "
                            f"(partitions: {', '.join(names) or 'none'})")
        return None
    return Partition(name=chosen[0][0].rstrip("*"), cpus=max(int(r[1].rstrip("+")) for r in chosen),
                     mem_gb=max(int(r[2].rstrip("+")) for r in chosen) // 1024,
                     gpus=max(gpu_count(r[3]) for r in chosen), gres=",".join(sorted({r[3] for r in chosen})),
                     max_minutes=minutes(chosen[0][4]))


def fit_to_partition(cfg: dict[str, Any], part: Partition | None) -> tuple[dict[str, Any], str | None]:
    """``cfg`` with requests the partition can grant, and the one line that says what changed (or None)."""
    if part is None:
        return cfg, None
    cfg, notes = dict(cfg), []
    want = int(cfg.get("gpus_per_node") or 0)
    if want and not part.gpus:
        cfg["gpus_per_node"] = 0
        notes.append(f"no GPU GRES ({part.gres}), so no GPUs are requested (slurm.gpus_per_node {want}) and jobs run on CPU")
    elif want > part.gpus:
        raise UserError(f"executor config slurm.gpus_per_node={want}, but the nodes of partition {part.name} have at most "
                        f"{part.gpus} GPUs: set slurm.gpus_per_node to {part.gpus} or less in an --executor-config file")
    tasks, gpus = int(cfg.get("tasks_per_node", 1)), int(cfg.get("gpus_per_node") or 0)
    if tasks > part.cpus or (gpus and tasks > 1 and tasks != gpus):
        raise UserError(f"executor config slurm.tasks_per_node={tasks}: one training process per GPU "
                        f"(slurm.gpus_per_node={gpus}), at most {part.cpus} on a node of partition {part.name}")
    if int(cfg["cpus_per_task"]) * tasks > part.cpus:
        per_task = part.cpus // tasks
        shared = f" for {tasks} tasks" if tasks > 1 else ""
        notes.append(f"{part.cpus} CPUs per node{shared}, so cpus_per_task {cfg['cpus_per_task']} becomes {per_task}")
        cfg["cpus_per_task"] = per_task
    if part.mem_gb and float(cfg["mem_gb"]) > part.mem_gb:
        notes.append(f"{part.mem_gb} GB per node, so mem_gb {cfg['mem_gb']} becomes {part.mem_gb}")
        cfg["mem_gb"] = part.mem_gb
    if part.max_minutes and int(cfg.get("timeout_min") or 0) > part.max_minutes:  # sbatch would refuse the job
        # submitit requeues a timed-out job 3 times by default: enough requeues to reach the asked-for time
        cfg["max_num_timeout"] = -(-int(cfg["timeout_min"]) // part.max_minutes) + 3
        notes.append(f"a time limit of {part.max_minutes} min, so timeout_min {cfg['timeout_min']} becomes "
                     f"{part.max_minutes} (a job at the limit checkpoints and is requeued, up to "
                     f"{cfg['max_num_timeout']} times)")
        cfg["timeout_min"] = part.max_minutes
    return cfg, (f"slurm: partition {part.name}: " + "; ".join(notes)) if notes else None


def accounting_off() -> bool:
    """True where ``sacct`` fails (no accounting storage): then job states come from ``squeue`` only."""
    try:
        out = _call("sacct", "-n", "-X", "-o", "JobID", "-S", "now")
    except (OSError, subprocess.TimeoutExpired):  # no sacct at all, or no answer: states come from squeue
        return True
    return out.returncode != 0


class _QuietSacct(logging.Filter):
    """Drops submitit's per-poll "Bypassing sacct error" warnings (the sweep said once that accounting is off)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Bypassing sacct error" not in record.getMessage()


def prepare(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check the clients, fit the requests to the partition and say what changed, quiet submitit's sacct warnings."""
    require_clients()
    cfg, note = fit_to_partition(cfg, partition_info(cfg.get("partition")))
    if note:
        print(note, file=sys.stderr)
    if accounting_off():
        print("slurm: accounting storage is off (sacct fails): job states come from squeue", file=sys.stderr)
    logger = logging.getLogger("submitit")
    if not any(isinstance(f, _QuietSacct) for f in logger.filters):
        logger.addFilter(_QuietSacct())
    return cfg


def job_states(job_ids: list[str]) -> dict[str, str] | None:
    """``job id -> Slurm state`` from one ``squeue`` call (array tasks one by one, finished jobs included);
    ids the controller no longer knows map to :data:`GONE`; None where ``squeue`` fails (state unknown)."""
    if not job_ids:
        return {}
    mains = sorted({j.split("_")[0] for j in job_ids})
    try:
        out = _call("squeue", "-h", "-r", "--states=all", "-o", "%i|%T", "-j", ",".join(mains), timeout=30)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        return None
    seen = dict(line.split("|", 1) for line in out.stdout.split() if "|" in line)
    return {j: seen.get(j, GONE) for j in job_ids}


class StatePoll:
    """Which submitted jobs have ended: a job whose result file exists has; else ``squeue`` says, polled at
    most every ``interval_s`` (submitit's own check asks ``sacct`` and, without accounting, never sees a
    cancelled or failed node's job end). ``grace_s`` lets a result file written at the end appear on a
    network file system before the job counts as lost."""

    def __init__(self, interval_s: float = 2.0, grace_s: float = 3.0):
        self.interval_s, self.grace_s = interval_s, grace_s
        self.states: dict[str, str] = {}
        self.ended_at: dict[str, float] = {}
        self.last = 0.0

    def refresh(self, jobs: list[Any]) -> None:
        if time.time() - self.last < self.interval_s:
            return
        self.last = time.time()
        states = job_states([str(j.job_id) for j in jobs if not j.paths.result_pickle.exists()])
        if states is not None:
            self.states.update(states)

    def done(self, job: Any) -> bool:
        if job.paths.result_pickle.exists():
            return True
        state = self.states.get(str(job.job_id), "")
        if state not in TERMINAL and state != GONE:
            self.ended_at.pop(str(job.job_id), None)  # e.g. NODE_FAIL, then requeued: running again
            return False
        return time.time() - self.ended_at.setdefault(str(job.job_id), time.time()) >= self.grace_s

    def lost(self, job: Any) -> str | None:
        """Why a done job left no result, as one line naming its log; None where it left one."""
        if job.paths.result_pickle.exists():
            return None
        state = self.states.get(str(job.job_id), GONE)
        said = "is no longer known to Slurm" if state == GONE else f"ended {state}"
        return f"Slurm job {job.job_id} {said} without a result (log: {job.paths.stderr})"
