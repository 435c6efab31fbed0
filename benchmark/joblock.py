"""The per-job lock: one (method, backbone, seed) job runs in one process at a time on a results folder.

An exclusive ``flock`` (not a lock file's existence), so the kernel drops it with a dead process and it
never goes stale; taken by every job, inline or submitted, so a run and a sweep never train twice.
"""
from __future__ import annotations

import fcntl
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from benchmark.errors import UserError


def lock_path(spec: Any) -> Path:
    """The lock file of ``spec``'s job (a :class:`benchmark.runner.RunSpec`)."""
    return Path(spec.results) / "jobs" / "locks" / f"{spec.method}__{spec.backbone}__seed{spec.seed}.lock"


@contextmanager
def job_lock(spec: Any) -> Iterator[None]:
    """Hold the job's exclusive ``flock`` on :func:`lock_path` while it runs, whoever started it.

    Two ``bench run`` processes, or a run and a sweep, on one results folder would otherwise both train
    the same method and race to write the same records: the second waits (saying for what), then finds
    the records written and skips them. The kernel drops the lock of a dead process, so it never goes stale.
    """
    path = lock_path(spec)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as e:
        raise UserError(f"cannot create the job lock {path} ({e.strerror}): choose a writable --results folder") from None
    with open(path, "a") as handle:
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"  {spec.method} x {spec.backbone} (seed {spec.seed}): another process is running this job "
                      f"(lock {path}); waiting for it, then doing only what it left", file=sys.stderr)
                fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as e:  # ENOLCK / ENOSYS: a network file system mounted without lock support
            raise UserError(f"cannot lock {path} ({e.strerror}): its file system has no flock support; put --results "
                            "on a file system with locking (local disk, NFS with lockd, Lustre mounted -o flock)") from None
        yield  # released when the file closes or the process dies
