"""The data layer shared by methods and tasks: readers, video I/O, sampling, transforms, toy suite.

It belongs to the core because both sides use it: methods read training clips, tasks read labelled
splits, and neither may import the other (``tests/test_import_rules.py``).
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Folder for generated data and other caches (``$I2V_BENCH_CACHE`` or ``~/.cache/i2v-bench``)."""
    return Path(os.environ.get("I2V_BENCH_CACHE", Path.home() / ".cache" / "i2v-bench"))
