"""Preflight: `bench run` and `bench sweep` (even `--dry-run`) check every job before the first one starts.

Each problem is one stderr line, all are listed, then the command exits 2 having written nothing: no
result, no lock, no job folder. Data layouts are the toy suite's, broken one file at a time.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmark.cli import main

FAST = ["--no-progress", "--no-cache", "--device", "cpu"]


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("I2V_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("I2V_BENCH_WEIGHTS", str(tmp_path / "weights"))  # an empty weights folder
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "data").mkdir()
    return tmp_path


def lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.strip()]


def test_run_over_davis_and_ucf101_stops_before_davis_when_ucf101_split_file_is_missing(toy_root, env, capfd):
    os.symlink(toy_root / "DAVIS", env / "data" / "DAVIS")
    ucf = env / "data" / "UCF101"
    ucf.mkdir()
    os.symlink(toy_root / "UCF101" / "UCF-101", ucf / "UCF-101")
    shutil.copytree(toy_root / "UCF101" / "ucfTrainTestlist", ucf / "ucfTrainTestlist")
    (ucf / "ucfTrainTestlist" / "testlist01.txt").unlink()
    argv = ["run", "--method", "frozen", "--backbone", "vit_tiny_random", "--tasks", "davis,ucf101_cls",
            "--data-root", str(env / "data"), "--results", str(env / "res"), *FAST]

    assert main(argv) == 2
    err = lines(capfd.readouterr().err)
    assert len(err) == 1, err  # one problem, one line
    assert err[0].startswith("error: task ucf101_cls: ") and "testlist01.txt" in err[0]
    assert not (env / "res").exists()  # DAVIS was not evaluated first


def test_sweep_dry_run_lists_every_problem_once_and_plans_nothing(toy_root, env, capfd, monkeypatch):
    """18 jobs, none of which could finish: missing weights of two backbones, two training methods without
    training data and a Slurm partition that does not exist: five lines and a count, not 18 failures."""
    bin_dir = env / "bin"
    bin_dir.mkdir()
    for name in ("sbatch", "srun", "squeue", "scontrol", "sinfo"):  # a cluster with two partitions, nothing submits
        body = "printf 'debug*|4|8000|(null)|infinite\\ngpu|8|64000|gpu:2|2-00:00:00\\n'" if name == "sinfo" else "exit 1"
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (env / "executor.yaml").write_text("slurm: {partition: a100}\n")
    argv = ["sweep", "--methods", "frozen,cosettle,advise", "--backbones", "mae,dino,vit_tiny_random", "--seeds", "0,1",
            "--tasks", "davis", "--data-root", str(toy_root), "--results", str(env / "res"), "--executor", "slurm",
            "--executor-config", str(env / "executor.yaml"), "--dry-run", *FAST]

    assert main(argv) == 2
    out = capfd.readouterr()
    err = lines(out.err)
    assert out.out == ""  # no plan printed: it could not run
    assert len(err) == 6, err
    assert err[0].startswith("error: no weights for backbone 'mae': ") and "mae_pretrain_vit_base.pth" in err[0]
    assert "download mae_pretrain_vit_base.pth from https://dl.fbaipublicfiles.com/" in err[0]  # the backbone's own line
    assert "`bench weights fetch mae` does it where the network is reachable" in err[0]
    assert err[1].startswith("error: no weights for backbone 'dino': ")  # jobs in grid order, each problem once
    assert "method cosettle trains on unlabelled videos: pass --train-data DIR" in err[2]
    assert "method advise trains on unlabelled videos: pass --train-data DIR" in err[3]
    assert "slurm.partition='a100': sinfo lists no such partition (partitions: debug, gpu)" in err[4]
    assert err[5] == "error: 5 problems found before any job started: nothing was run or written"
    assert not (env / "res").exists()


def test_slurm_without_sbatch_is_one_line(toy_root, env, capfd, monkeypatch):
    monkeypatch.setenv("PATH", str(env / "nowhere"))
    argv = ["sweep", "--methods", "frozen", "--backbones", "vit_tiny_random", "--tasks", "davis", "--data-root",
            str(toy_root), "--results", str(env / "res"), "--executor", "slurm", "--dry-run", *FAST]
    assert main(argv) == 2
    err = lines(capfd.readouterr().err)
    assert "--executor slurm needs sbatch and srun on PATH" in err[0] and len(err) == 1, err


def test_a_single_frame_davis_sequence_is_refused_by_name_before_anything_runs(toy_root, env, capfd):
    davis = env / "data" / "DAVIS"
    shutil.copytree(toy_root / "DAVIS", davis)
    for kind in ("JPEGImages", "Annotations"):
        for path in sorted((davis / kind / "480p" / "toy-01").iterdir())[1:]:
            path.unlink()
    argv = ["run", "--method", "frozen", "--backbone", "vit_tiny_random", "--tasks", "davis",
            "--data-root", str(env / "data"), "--results", str(env / "res"), *FAST]

    assert main(argv) == 2
    err = lines(capfd.readouterr().err)
    assert len(err) == 1, err
    assert err[0].startswith("error: task davis: sequence toy-01 of the val split has 1 frame(s): ")
    assert "needs at least 3" in err[0]
    assert not (env / "res").exists()


def test_a_cuda_device_on_a_machine_without_one_is_refused_before_anything_is_written(env, capfd):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv = ["run", "--method", "frozen", "--backbone", "vit_tiny_random", "--tasks", "tradeoff", "--data-root",
            str(env / "data"), "--results", str(env / "res"), "--no-progress", "--no-cache", "--device", "cuda"]
    assert main(argv) == 2
    err = lines(capfd.readouterr().err)
    assert err == ["error: --device cuda was asked for but no CUDA device is visible here: use --device cpu (or auto)"]
    assert not (env / "res").exists()
