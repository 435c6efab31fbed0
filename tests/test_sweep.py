"""`bench sweep`: a local grid completes, reruns do nothing, kills resume exactly once, failures are retried."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark import sweep
from benchmark.cli import main
from benchmark.errors import UserError
from benchmark.results import read_record
from benchmark.runner import RunSpec, pending_tasks

REPO = Path(__file__).resolve().parent.parent
BACKBONES = ["efficientnet_lite0", "vit_tiny_random"]
FAST = ["--tasks", "tradeoff", "--set", "tradeoff.num_frames=8", "--set", "tradeoff.resize_short=64",
        "--set", "tradeoff.crop=64", "--no-progress"]

PLUGIN = '''
import time
from pathlib import Path

import torch

from benchmark.registry import METHODS
from methods.base import Method


@METHODS.register("halfdim")
class HalfDim(Method):
    """First half of the channels; logs each training call so a test can count them. The run of seed
    ``hold_seed`` waits (up to 5 min) in fit until the file ``gate`` exists."""
    default_config = {"batch_size": 8, "fit_log": "", "gate": "", "hold_seed": -1}

    def fit(self, ctx):
        deadline = time.time() + 300
        while ctx.seed == self.config["hold_seed"] and not Path(self.config["gate"]).exists() and time.time() < deadline:
            time.sleep(0.1)
        if self.config["fit_log"]:
            with open(self.config["fit_log"], "a") as f:
                f.write(f"{self.backbone.meta.name} {ctx.seed}\\n")
        return {"trainable_params": 0}

    def frame_features(self, frames):
        f = self.encode_frames(frames)
        return f[..., : f.shape[-1] // 2]


@METHODS.register("smooth")
class Smooth(Method):
    """Average of each frame's tokens with the previous frame's; fails while its flag file exists."""
    default_config = {"batch_size": 8, "fail_flag": ""}

    def frame_features(self, frames):
        if self.config["fail_flag"] and Path(self.config["fail_flag"]).exists():
            raise RuntimeError("smooth was told to fail")
        f = self.encode_frames(frames)
        return (f + torch.roll(f, 1, 0)) / 2
'''


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Three 8-frame 64×64 frame folders panning over scikit-image photos."""
    from PIL import Image
    from skimage import data

    root = tmp_path_factory.mktemp("clips")
    for name in ("astronaut", "coffee", "chelsea"):
        img = getattr(data, name)()
        (root / name).mkdir()
        for t in range(8):
            Image.fromarray(img[100 + 3 * t:164 + 3 * t, 100 + 2 * t:164 + 2 * t]).save(root / name / f"{t:03d}.png")
    return root


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    """One plugin file for the module: a file is imported once per process, its names registered once."""
    path = tmp_path_factory.mktemp("plugin") / "sweep_toy_methods.py"
    path.write_text(PLUGIN)
    return path


def sweep_args(clips: Path, results: Path, plugin: Path, methods: str, *extra: str, backbones: str = ",".join(BACKBONES)
               ) -> list[str]:
    return ["sweep", "--methods", methods, "--backbones", backbones, "--data-root", str(clips),
            "--results", str(results), "--plugin", str(plugin), *FAST, *extra]


def records(results: Path) -> dict[Path, object]:
    return {p: read_record(p) for p in sorted(results.glob("*/*/*/*/seed*.json"))}


def path_of(results: Path, method: str, backbone: str, task: str, seed: int) -> Path:
    """The one current record of (method, backbone, task, seed), whatever its variant is named."""
    (path,) = results.glob(f"{method}/{backbone}/{task}/*/seed{seed}.json")
    return path


def expected_paths(results: Path, methods: list[str]) -> set[Path]:
    return {path_of(results, m, b, "tradeoff", 0) for m in methods for b in BACKBONES}


def test_local_sweep_completes_and_rerun_submits_nothing(clips, plugin, tmp_path, capsys):
    res, log = tmp_path / "res", tmp_path / "fit.log"
    args = sweep_args(clips, res, plugin, "frozen,halfdim,smooth", "--executor", "local", "--max-parallel", "2",
                      "--set", f"halfdim.fit_log={log}")
    assert main(args) == 0
    out, err = capsys.readouterr()
    recs = records(res)
    assert set(recs) == expected_paths(res, ["frozen", "halfdim", "smooth"])
    assert all(r.status == "ok" for r in recs.values())
    assert "sweep: 6 jobs submitted, 6 results written, 0 failed (job or task)" in err
    # the halfdim override reached only halfdim's jobs, and each trained exactly once
    assert sorted(log.read_text().splitlines()) == ["efficientnet_lite0 0", "vit_tiny_random 0"]
    assert recs[path_of(res, "frozen", "efficientnet_lite0", "tradeoff", 0)].config["method"] == {}
    rows = [line for line in out.splitlines() if line.startswith("| ") and "backbone" not in line]
    assert len(rows) == 6 and sum("(RANDOM INIT)" in r for r in rows) == 3

    mtimes = {p: p.stat().st_mtime_ns for p in recs}
    assert main([*args, "--dry-run"]) == 0
    assert "6 jobs in the grid, 0 to submit; 0 task evaluations to run (0 retries of failures), 6 results already present" \
        in capsys.readouterr().out
    assert main(args) == 0
    assert "sweep: 0 jobs submitted, 0 results written, 0 failed (job or task)" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in records(res)} == mtimes
    assert len(log.read_text().splitlines()) == 2


def test_killed_sweep_resumes_with_every_result_exactly_once(clips, plugin, tmp_path, capsys):
    """SIGKILL the real `bench sweep` process after its first result; the rerun finishes the grid.

    The killed sweep's local jobs survive it (submitit's controllers are detached by design); the
    rerun's copies wait for their locks and find the results written, so each job trains once. Seed 1
    waits in fit until the kill has landed (its gate file), however fast the machine.
    """
    res, log, gate = tmp_path / "res", tmp_path / "fit.log", tmp_path / "gate"
    args = sweep_args(clips, res, plugin, "halfdim", "--seeds", "0,1", "--executor", "local", "--max-parallel", "1",
                      "--set", f"halfdim.fit_log={log}", "--set", f"halfdim.gate={gate}", "--set", "halfdim.hold_seed=1",
                      backbones="efficientnet_lite0")
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.time() + 240
    while not list(res.glob("*/*/*/*/seed*.json")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p: p.stat().st_mtime_ns for p in res.glob("*/*/*/*/seed*.json")}
    assert len(before) == 1, "the kill must land mid-way"

    gate.touch()
    assert main(args) == 0
    capsys.readouterr()
    recs = records(res)
    wanted = {path_of(res, "halfdim", "efficientnet_lite0", "tradeoff", s) for s in (0, 1)}
    assert set(recs) == wanted and all(r.status == "ok" for r in recs.values())
    assert not [p for p in res.rglob("*.tmp")]
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # finished results were not recomputed
    fits = log.read_text().splitlines()
    assert sorted(fits) == ["efficientnet_lite0 0", "efficientnet_lite0 1"]  # every job trained exactly once


def test_failed_job_is_recorded_and_only_failures_are_retried(clips, plugin, tmp_path, capsys):
    res, flag = tmp_path / "res", tmp_path / "fail"
    flag.touch()
    args = sweep_args(clips, res, plugin, "frozen,smooth", "--executor", "inline", "--set", f"smooth.fail_flag={flag}",
                      backbones="efficientnet_lite0")
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "FAILED smooth x efficientnet_lite0 (seed 0), task tradeoff: RuntimeError: smooth was told to fail" in err
    failed = read_record(path_of(res, "smooth", "efficientnet_lite0", "tradeoff", 0))
    assert failed.status == "failed" and "Traceback" in failed.traceback and "frame_features" in failed.traceback
    assert failed.error == "RuntimeError: smooth was told to fail" and failed.identity
    assert "frozen" in out and "smooth" not in out  # the table treats the failure as missing
    spec = RunSpec(method="smooth", backbone="efficientnet_lite0", tasks=["tradeoff"], results=res, data_root=clips,
                   overrides={"smooth": {"fail_flag": str(flag)}, "tradeoff": {"num_frames": 8, "resize_short": 64, "crop": 64}},
                   plugins=[str(plugin)])
    assert pending_tasks(spec) == ["tradeoff"]

    assert main([*args, "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "smooth x efficientnet_lite0 (seed 0): run tradeoff; retry after failure tradeoff" in plan
    assert "frozen x efficientnet_lite0 (seed 0): present tradeoff" in plan

    frozen = path_of(res, "frozen", "efficientnet_lite0", "tradeoff", 0)
    before = frozen.stat().st_mtime_ns
    flag.unlink()
    assert main(args) == 0
    assert "sweep: 1 jobs submitted, 1 results written, 0 failed (job or task)" in capsys.readouterr().err
    assert read_record(path_of(res, "smooth", "efficientnet_lite0", "tradeoff", 0)).status == "ok"
    assert frozen.stat().st_mtime_ns == before


BOOM = '''
from benchmark.registry import TASKS
from tasks.base import Task, TaskMeta


@TASKS.register("boom")
class Boom(Task):
    """A task that always fails."""
    meta = TaskMeta(name="boom", dataset="", main_metric="x", needs_labels=False)

    def evaluate(self, method, ctx):
        raise RuntimeError("boom always fails")
'''


def test_a_failing_task_costs_only_itself(clips, plugin, tmp_path, capsys):
    """One job runs [boom, tradeoff]: boom's failure is recorded, tradeoff still runs in the same job."""
    boom = tmp_path / "boom_task.py"
    boom.write_text(BOOM)
    res = tmp_path / "res"
    args = sweep_args(clips, res, plugin, "frozen", "--executor", "inline", "--plugin", str(boom),
                      backbones="efficientnet_lite0")
    args[args.index("--tasks") + 1] = "boom,tradeoff"
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "FAILED frozen x efficientnet_lite0 (seed 0), task boom: RuntimeError: boom always fails" in err
    assert read_record(path_of(res, "frozen", "efficientnet_lite0", "boom", 0)).status == "failed"
    assert read_record(path_of(res, "frozen", "efficientnet_lite0", "tradeoff", 0)).status == "ok"


def test_grid_sends_method_overrides_only_to_their_jobs():
    fields = {"tasks": ["tradeoff"], "overrides": {"halfdim": {"x": 1}, "vit_tiny_random": {"y": 2}, "tradeoff": {"z": 3}}}
    specs = sweep.grid(fields, ["frozen", "halfdim"], BACKBONES, [0, 1])
    assert len(specs) == 8
    by_key = {(s.method, s.backbone, s.seed): s.overrides for s in specs}
    assert by_key[("frozen", "efficientnet_lite0", 1)] == {"tradeoff": {"z": 3}}
    assert by_key[("halfdim", "vit_tiny_random", 0)] == fields["overrides"]
    with pytest.raises(UserError, match="--methods"):
        sweep.grid(fields, [], BACKBONES, [0])


def test_slurm_submission_is_one_bounded_array(tmp_path, monkeypatch):
    """Through submitit against stand-in `sbatch`/`srun`: one array, parallelism bounded, requeue signal set."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\n'
                                    'cp "$(eval echo \\${$#})" "$(dirname "$0")/script"\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for f in ("sbatch", "srun"):
        (bin_dir / f).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    user_cfg = tmp_path / "executor.yaml"
    user_cfg.write_text("slurm: {partition: gpu, mem_gb: 32}\n")
    cfg = sweep.executor_config("slurm", user_cfg)
    todo = [sweep.Planned(RunSpec(method="frozen", backbone=b, tasks=["tradeoff"], results=tmp_path), ["tradeoff"], [])
            for b in ("mae", "dino", "clip")]
    jobs = sweep.submit_slurm(todo, tmp_path / "jobs", cfg, max_parallel=2)
    assert [j.job_id for j in jobs] == ["4242_0", "4242_1", "4242_2"]
    assert len((bin_dir / "calls").read_text().splitlines()) == 1
    script = (bin_dir / "script").read_text()
    for line in ("--array=0-2%2", "--partition=gpu", "--mem=32GB", "--gpus-per-node=1", "--signal=USR2@120"):
        assert f"#SBATCH {line}\n" in script


def test_executor_config_rejects_unknown_keys(tmp_path):
    bad = tmp_path / "executor.yaml"
    bad.write_text("slurm: {partiton: gpu}\n")
    with pytest.raises(UserError, match="unknown key 'partiton'"):
        sweep.executor_config("slurm", bad)
    with pytest.raises(UserError, match="unknown --executor"):
        sweep.executor_config("kubernetes")


def test_locked_job_with_nothing_left_never_waits_on_the_lock(tmp_path):
    """A job with no task left returns at once even while another process holds its lock (the lock is taken
    only for work: waiting, then skipping what the holder wrote, is tested with two real `bench run` processes
    in tests/test_faults.py)."""
    spec = RunSpec(method="frozen", backbone="efficientnet_lite0", tasks=[], results=tmp_path)
    lock = sweep.lock_path(spec)
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); "
        "time.sleep(120)"), str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert sweep.LockedJob(spec)() == []
        assert holder.poll() is None  # returned while the lock was still held
    finally:
        holder.kill()
        holder.wait()


def test_a_file_system_without_flock_is_one_line(tmp_path, monkeypatch):
    """ENOLCK (NFS without lockd) or ENOSYS (Lustre without -o flock) from flock: one line naming the lock file."""
    import errno

    from benchmark import joblock

    def no_locks(handle, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(joblock.fcntl, "flock", no_locks)
    spec = RunSpec(method="frozen", backbone="efficientnet_lite0", tasks=["davis"], results=tmp_path)
    with pytest.raises(UserError, match=r"cannot lock .*frozen__efficientnet_lite0__seed0\.lock \(No locks available\): "
                                        r"its file system has no flock support"):
        with joblock.job_lock(spec):
            pass


def test_failure_reason_is_the_exception_line_of_submitit_messages():
    failed = ("Job (task=0) failed during processing with trace:\n----------------------\nTraceback (most recent call "
              "last):\n  File \"x.py\", line 4, in f\ntorch.OutOfMemoryError: CUDA out of memory.\n\n"
              "----------------------\nYou can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:\n"
              "  - /r/jobs/1_0_log.err\n  - /r/jobs/1_0_log.out\n")
    assert sweep.reason_of(failed) == "torch.OutOfMemoryError: CUDA out of memory."
    killed = "Job 1 (task: 0) with path /r/jobs/1_0_result.pkl\nhas not produced any output (state: INTERRUPTED)\n"
    assert sweep.reason_of(killed) == ("Job 1 (task: 0) with path /r/jobs/1_0_result.pkl has not produced any output "
                                       "(state: INTERRUPTED)")
