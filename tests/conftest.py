"""Shared fixtures: the toy suite is generated once per test session and reused by every test."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated.*")
# Tests never reach the network: the package no longer sets this at import (only `bench run --offline`
# does), so the suite says it here; subprocesses started by tests inherit it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    """Root of the generated toy suite (all data sets in their real on-disk layouts)."""
    from benchmark.data.toy import generate

    return generate(tmp_path_factory.mktemp("toy"), seed=0, size="small")


@pytest.fixture(scope="module")
def plugin(request, tmp_path_factory) -> Path:
    """The test module's ``PLUGIN`` source as one plugin file, named ``PLUGIN_FILE`` (default ``probe.py``):
    one per module, since a file is a module and is registered once per process."""
    path = tmp_path_factory.mktemp("plugin") / getattr(request.module, "PLUGIN_FILE", "probe.py")
    path.write_text(request.module.PLUGIN)
    return path
