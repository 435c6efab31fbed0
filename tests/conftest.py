"""Shared fixtures: the toy suite is generated once per test session and reused by every test."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated.*")


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    """Root of the generated toy suite (all data sets in their real on-disk layouts)."""
    from benchmark.data.toy import generate

    return generate(tmp_path_factory.mktemp("toy"), seed=0, size="small")
