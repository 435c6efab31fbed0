"""What a sweep is doing, readable from another shell: ``bench sweep --status``.

The submitting process keeps a ledger, ``<results>/jobs/sweep-<time>-<pid>.json`` beside the folder of its
job logs (not inside it, where ``*/*/*.json`` would take it for a result record), rewritten
atomically whenever one of its jobs is submitted or finishes: each job's key, executor id (Slurm job
id or local process id), log paths and its state as the submitter last saw it. ``--status`` reads the
ledgers of the sweeps still running (else the latest one) and, for jobs the submitter has not seen
finish, asks the executor for the live state (``squeue`` for Slurm, ``/proc`` for local processes),
so a sweep whose submitter was killed still shows its Slurm jobs queued or running.
"""
from __future__ import annotations

import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmark.errors import UserError

QUEUED = {"PENDING", "REQUEUED", "CONFIGURING", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED"}
RUNNING = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING"}


class Ledger:
    """The submitter's side: one entry per job of the sweep, written atomically on every change."""

    def __init__(self, folder: Path, executor: str, keys: list[tuple[str, Any]]):
        self.path = Path(folder).with_suffix(".json")
        self.doc: dict[str, Any] = {
            "executor": executor, "host": socket.gethostname(), "pid": os.getpid(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "jobs": {key: {"method": s.method, "backbone": s.backbone, "seed": s.seed, "state": "waiting"}
                     for key, s in keys},
        }  # written at the first submission: a sweep refused by its executor leaves no ledger

    def _write(self) -> None:
        from benchmark.results import write_json_atomic

        write_json_atomic(self.path, self.doc)

    def submitted(self, entries: list[tuple[str, dict[str, Any]]]) -> None:
        """``(key, info)`` of jobs just submitted; ``info`` holds the executor's job id and log paths."""
        for key, info in entries:
            self.doc["jobs"][key].update(state="submitted", **{k: v for k, v in info.items() if k != "executor"})
        self._write()

    def finished(self, key: str, reason: str | None) -> None:
        self.doc["jobs"][key].update(state="failed" if reason else "done", **({"reason": reason} if reason else {}))
        self._write()


def _alive(pid: int, host: str) -> bool | None:
    """Whether a process of this host is alive; None for another host's (cannot tell)."""
    if host != socket.gethostname():
        return None
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _outcome(job: dict[str, Any]) -> str | None:
    """``done`` or ``failed (…)`` from the job's own result (submitit's ``("success", outcomes)`` or
    ``("error", traceback)`` pickle), None where it wrote none. What the executor says is not enough:
    Slurm forgets a finished job after MinJobAge (``GONE``), and ``COMPLETED`` includes a job whose tasks failed."""
    import pickle

    try:
        kind, value = pickle.loads(Path(job["result"]).read_bytes())
    except (KeyError, OSError, ValueError, TypeError, pickle.UnpicklingError, AttributeError, ImportError, EOFError):
        return None
    if kind != "success":
        return "failed (error)"
    bad = sum(getattr(o, "status", "") in ("failed", "error") for o in value or [])
    return f"failed ({bad} task{'s' * (bad != 1)})" if bad else "done"


def _live_state(doc: dict[str, Any], job: dict[str, Any], slurm_states: dict[str, str]) -> str:
    """The state to show: the submitter's word for finished jobs, else the job's own result, else the executor's."""
    if job["state"] in ("done", "failed", "waiting"):
        return "queued" if job["state"] == "waiting" else job["state"]
    if doc["executor"] == "slurm":
        state = slurm_states.get(str(job.get("job_id")), "")
        if state in QUEUED:
            return "queued"
        if state in RUNNING:
            return "running"
        outcome = _outcome(job)  # the job's own word first: squeue may have failed, or forgotten it
        if outcome or not state:
            return outcome or "unknown (squeue failed)"
        return "done" if state == "COMPLETED" else f"failed ({state.lower()})"
    alive = _alive(int(job["job_id"]), doc["host"]) if str(job.get("job_id", "")).isdigit() else None
    return "running" if alive in (True, None) else _outcome(job) or "ended"


def ledgers(results: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The sweeps to show: those whose submitter still runs, else the latest one."""
    import json

    found = []
    for path in sorted(Path(results, "jobs").glob("sweep-*.json")):  # names sort by start time
        for _ in range(3):  # the submitter replaces the file as we read: read again
            try:
                found.append((path, json.loads(path.read_text())))
                break
            except (OSError, ValueError):
                time.sleep(0.1)
    if not found:
        raise UserError(f"no sweep has run under {Path(results) / 'jobs'}: pass the --results folder the sweep writes to")
    live = [(p, d) for p, d in found if _alive(d["pid"], d["host"])]
    return live or found[-1:]


def render(results: Path) -> str:
    """Each sweep's header and one row per job: key, executor id, state, log."""
    from tabulate import tabulate

    from benchmark.slurm import job_states

    out = []
    for path, doc in ledgers(results):
        ids = [str(j["job_id"]) for j in doc["jobs"].values() if j["state"] == "submitted" and j.get("job_id")]
        states = (job_states(ids) or {}) if doc["executor"] == "slurm" else {}
        rows = [[key, j.get("job_id", ""), _live_state(doc, j, states), j.get("stderr", "")] for key, j in doc["jobs"].items()]
        counts = {s: sum(r[2].split()[0] == s for r in rows) for s in ("queued", "running", "done", "failed")}
        alive = _alive(doc["pid"], doc["host"])
        who = {True: "running", False: "ended", None: f"on {doc['host']}"}[alive]
        out.append(f"sweep {path.with_suffix('')} ({doc['executor']}, started {doc['started']}, submitter pid {doc['pid']} {who}): "
                   + ", ".join(f"{n} {s}" for s, n in counts.items()))
        out.append(tabulate(rows, headers=["job", "slurm id" if doc["executor"] == "slurm" else "id", "state", "log"]))
        out += [f"  {key}: {j['reason']}" for key, j in doc["jobs"].items() if j.get("reason")]
    return "\n".join(out)
