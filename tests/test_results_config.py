"""Result store atomicity and config validation."""
from __future__ import annotations

import json
import os

import pytest

from benchmark.config import merge, parse_sets
from benchmark.errors import UserError
from benchmark.results import SCHEMA_VERSION, is_complete, iter_results, read_record, write_json_atomic


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "m" / "b" / "t__seed0.json"

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(UserError, match="No space left on device"):
        write_json_atomic(path, {"a": 1})
    assert list(path.parent.iterdir()) == []


def test_unwritable_results_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions: simulate with a file in the way instead
            (tmp_path / "blocker").write_text("x")
            target = tmp_path / "blocker" / "r.json"
        else:
            target = ro / "sub" / "r.json"
        with pytest.raises(UserError, match="choose a writable --results folder"):
            write_json_atomic(target, {"a": 1})
    finally:
        ro.chmod(0o700)


def test_corrupt_result_is_reported_and_treated_as_missing(tmp_path, capsys):
    good = {"schema_version": SCHEMA_VERSION, "status": "ok", "identity": "h", "method": "m", "backbone": "b",
            "task": "t", "seed": 0, "main_metric": "x", "metrics": {"x": 1.0}, "higher_is_better": True}
    write_json_atomic(tmp_path / "m/b/t/default/seed0.json", good)
    (tmp_path / "m/b/u/default/seed0.json").parent.mkdir(parents=True)
    (tmp_path / "m/b/u/default/seed0.json").write_text('{"schema_version": 2, "stat')
    write_json_atomic(tmp_path / "m/b/w/default/seed0.json", {**good, "schema_version": 99})
    assert is_complete(tmp_path / "m/b/t/default/seed0.json", "h")
    assert not is_complete(tmp_path / "m/b/t/default/seed0.json", "other-identity")
    assert read_record(tmp_path / "m/b/u/default/seed0.json") is None
    assert "is corrupt" in capsys.readouterr().err
    assert read_record(tmp_path / "m/b/w/default/seed0.json") is None
    assert "schema version 99" in capsys.readouterr().err
    assert [r.task for r in iter_results(tmp_path)] == ["t"]
    assert json.loads((tmp_path / "m/b/t/default/seed0.json").read_text())["metrics"] == {"x": 1.0}


def test_merge_validates_keys_and_types():
    base = {"lr": 1e-4, "epochs": 5, "name": "x", "flag": True, "nested": {"k": 1}}
    assert merge(base, {"lr": 1, "nested": {"k": 2}}, "m") == {**base, "lr": 1.0, "nested": {"k": 2}}
    with pytest.raises(UserError, match="unknown key 'epoch'; valid keys: epochs, flag, lr, name, nested"):
        merge(base, {"epoch": 1}, "method m")
    with pytest.raises(UserError, match="epochs must be a int"):
        merge(base, {"epochs": "five"}, "m")
    with pytest.raises(UserError, match="flag must be true or false"):
        merge(base, {"flag": 1}, "m")


def test_parse_sets():
    assert parse_sets(["cosettle.lr=1e-3", "davis.topk=5", "a.b.c=true"]) == {
        "cosettle": {"lr": 1e-3}, "davis": {"topk": 5}, "a": {"b": {"c": True}}}
    with pytest.raises(UserError, match="SECTION.KEY=VALUE"):
        parse_sets(["epochs=3"])
