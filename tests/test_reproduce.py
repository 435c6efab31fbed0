"""`bench reproduce cosettle`: the runs come from the published table, each data folder is checked by its
reader and each weight file where the backbone looks for it; a dry run writes nothing, and a real run
refuses while anything is missing."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.published import load


@pytest.fixture
def no_weights(tmp_path, monkeypatch) -> Path:
    """An empty weights folder and no hub cache, whatever this machine holds."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("I2V_BENCH_WEIGHTS", str(folder))
    monkeypatch.setattr("benchmark.backbones.weights.hub_cache_file", lambda tag: None)
    return folder


def listing(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def test_dry_run_lists_every_run_of_the_table_and_what_is_missing_and_writes_nothing(tmp_path, no_weights, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    before = listing(tmp_path)
    assert main(["reproduce", "cosettle", "--dry-run", "--data-root", str(empty), "--results", str(tmp_path / "res")]) == 0
    out = capsys.readouterr().out
    assert listing(tmp_path) == before
    assert "preset cosettle on every task, jhmdb.pck=crw, <backbone>.input_norm=imagenet (the protocol the table's values are compared under)" in out
    assert "the table's protocol" not in out  # the table's protocol is the authors' unreleased evaluation
    ours = {p.backbone for p in load(["cosettle"])} & {"mae", "ijepa", "clip", "blip", "mocov3", "ibot", "dino"}
    for backbone in ours:
        for method in ("frozen", "cosettle"):
            assert f"run {method} x {backbone}: davis, vip, jhmdb" in out
        assert f"MISSING {backbone}" in out
    assert "dinov2_vitb16_inet_100ep" in out and "not in our registry" in out  # the authors' own encoder, not run
    for dataset, folder in [("davis", "DAVIS"), ("vip", "VIP"), ("jhmdb", "JHMDB"), ("kinetics", "kinetics")]:
        assert f"MISSING {dataset:<10} {empty / folder}" in out
    assert f"missing here: {4 + len(ours)} of {4 + len(ours)}" in out


def test_present_data_and_weights_are_found_and_a_run_refuses_while_anything_is_missing(tmp_path, toy_root, no_weights,
                                                                                       capsys):
    (no_weights / "dino_vitbase16_pretrain.pth").write_bytes(b"")  # the plan checks presence; loading is the run's job
    args = ["reproduce", "cosettle", "--backbones", "dino,mae", "--data-root", str(toy_root),
            "--results", str(tmp_path / "res")]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    for dataset in ("davis", "vip", "jhmdb", "kinetics"):
        assert f"ok      {dataset:<10} {toy_root}" in out
    assert f"ok      dino       {no_weights / 'dino_vitbase16_pretrain.pth'}" in out
    assert "MISSING mae" in out and "https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_base.pth" in out
    assert "missing here: 1 of 6 (weights mae)" in out
    assert main(args) == 2
    assert "cannot reproduce cosettle: 1 data folders or weight files are missing" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_a_task_the_table_does_not_report_is_refused(tmp_path, no_weights, capsys):
    assert main(["reproduce", "cosettle", "--tasks", "ucf101_cls", "--dry-run"]) == 2
    assert "reports only davis, vip, jhmdb" in capsys.readouterr().err


def test_reproduce_sets_the_pck_of_the_published_jhmdb_rows_and_says_where_checkpoints_differ(tmp_path, no_weights):
    """The published PCK@0.1 is CRW's ``eval_pck.py`` convention: the runs set ``jhmdb.pck=crw`` (before the user's
    own ``--set``, which still wins); each base row linking a checkpoint other than the file our backbone loads
    gets one line saying so, with the table's own words for its encoder."""
    import argparse

    from benchmark.reproduce import as_sweep, checkpoint_notes, plan

    p = plan("cosettle", ["mae", "dino"], data_root=tmp_path)
    assert p.options == {"jhmdb": {"pck": "crw"}} and p.backbone_options == {"input_norm": "imagenet"}
    notes = checkpoint_notes(p)
    assert len(notes) == 2 and notes[0].startswith("checkpoint differs: mae: the table's base is MAE ViT-B/16, INet, 800 ep")
    assert "ours loads mae_pretrain_vit_base.pth" in notes[0] and "not shown to be the same weights" in notes[0]
    assert plan("cosettle", ["mae"], data_root=tmp_path, tasks=["davis"]).options == {}
    p.items = []  # nothing missing, so that as_sweep goes on
    args = argparse.Namespace(set=["jhmdb.pck=fixed"], train_data=None, data_root=None)
    as_sweep(p, args)
    # the table's options (its PCK variant, the authors' ImageNet statistics for every encoder), then the user's own
    assert args.set[-4:] == ["jhmdb.pck=crw", "mae.input_norm=imagenet", "dino.input_norm=imagenet", "jhmdb.pck=fixed"]
    assert "jhmdb.preset=cosettle" in args.set
