"""`bench cache clear|prune` delete only what the feature cache wrote (its marker at the root, entries
recognised by name and schema), and refuse any other folder with one line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.cache_admin import entries
from benchmark.cli import main
from tests.test_cache import cached_method, frames


def _fill(root: Path, n: int = 2) -> list[Path]:
    for seed in range(n):
        cached_method(root).frame_features(frames(seed=seed))
    return sorted(e.path for e in entries(root))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["plain", "cache_parent", "data"])
def test_clear_refuses_a_folder_that_is_not_a_cache(tmp_path, capsys, target):
    cache_home = tmp_path / "home"
    _fill(cache_home / "features")
    if target == "plain":
        folder = tmp_path / "mine"
        (folder / "sub").mkdir(parents=True)
        (folder / "notes.txt").write_text("mine")
        (folder / "sub" / "0123456789abcdef0123456789abcdef.npy").write_bytes(b"looks like an entry")
    elif target == "cache_parent":  # $I2V_BENCH_CACHE instead of its features/ subfolder
        folder = cache_home
    else:
        from benchmark.data.video import write_video

        folder = tmp_path / "data"
        write_video(folder / "clips" / "a.mp4", np.zeros((2, 16, 16, 3), np.uint8))
    before = _snapshot(folder)
    for action in (["clear"], ["prune", "--max-size", "0"]):
        assert main(["cache", *action, "--dir", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "not a feature cache" in err and "untouched" in err
        assert _snapshot(folder) == before
    if target == "cache_parent":
        assert str(cache_home / "features") in err  # points at the right folder


def test_clear_removes_only_recognised_entries(tmp_path, capsys):
    root = tmp_path / "features"
    _fill(root)
    stray = [root / "README.txt", root / "counting" / "ab" / "mine.npy", root / "counting" / "ab" / ("ab" * 16 + ".npy")]
    for p in stray:  # a user's files, one named like an entry but without the cache's sidecar
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("user data")
    assert main(["cache", "clear", "--dir", str(root)]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert not list(entries(root)) and all(p.read_text() == "user data" for p in stray)
    assert (root / ".i2v-bench-feature-cache").is_file()
    assert main(["cache", "clear", "--dir", str(tmp_path / "absent")]) == 2  # a mistyped path is not "done"
    assert "no such folder" in capsys.readouterr().err


def test_prune_removes_least_recently_used_first(tmp_path, capsys):
    import os

    root = tmp_path / "features"
    paths = _fill(root, 3)
    size = next(entries(root)).size
    for age, p in zip((300, 100, 200), paths):  # paths[0] used longest ago, then paths[2]
        os.utime(p, (1_700_000_000 - age, 1_700_000_000 - age))
    assert main(["cache", "prune", "--dir", str(root), "--max-size", str(size + 1)]) == 0
    assert "removed 2" in capsys.readouterr().out
    assert [e.path for e in entries(root)] == [paths[1]]
    assert main(["cache", "prune", "--dir", str(root), "--max-size", "lots"]) == 2
    assert main(["cache", "prune", "--dir", str(root)]) == 2
    assert [e.path for e in entries(root)] == [paths[1]]
