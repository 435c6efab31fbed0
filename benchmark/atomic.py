"""Best-effort atomic file writes for caches (feature tokens, frame counts): complete or absent.

A unique temp file in the target's folder, then ``os.replace``: atomic on local and network file
systems (NFS included) and lock-free, since racing writers of one key write the same bytes. A cache
write that fails costs only speed, so the error is returned for the caller to log, never raised.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def write_atomic(path: Path, write: Callable[[Any], Any]) -> OSError | None:
    """Write ``path`` with ``write(binary file)``; on an OS error leave nothing behind and return it."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return e
    return None
