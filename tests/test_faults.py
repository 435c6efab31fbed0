"""Faults that must not lose a result: concurrent writers, Slurm-style pre-emption, and `bench doctor`.

(A NaN loss is tested in tests/methods/test_training.py, `kill -9` of a sweep in tests/test_sweep.py.)
"""
from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.results import iter_results

REPO = Path(__file__).resolve().parent.parent
TINY_TRADEOFF = ["--set", "tradeoff.num_frames=8", "--set", "tradeoff.resize_short=64", "--set", "tradeoff.crop=64"]


def path_of(results: Path, method: str, backbone: str, task: str, seed: int) -> Path:
    """The one current record of (method, backbone, task, seed), whatever its variant is named."""
    (path,) = results.glob(f"{method}/{backbone}/{task}/*/seed{seed}.json")
    return path
JOBS = 8


@pytest.fixture()
def clips(toy_root: Path, tmp_path: Path) -> Path:
    """Two toy clips: the cheapest real input of a real task (tradeoff)."""
    out = tmp_path / "clips"
    out.mkdir()
    for name in ("clip_000.mp4", "clip_001.mp4"):
        shutil.copy(toy_root / "clips" / name, out / name)
    return out


def _job(argv: list[str], log: str) -> None:
    """Body of one forked job: `bench run` with its output in ``log``, exit code as the process's."""
    import torch

    torch.set_num_threads(1)  # OpenMP's pool does not survive fork(); DataLoader workers do the same
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 1
    try:
        code = main(argv)
    finally:
        os._exit(code)


def test_eight_concurrent_jobs_share_one_results_folder_and_feature_cache(clips, tmp_path, monkeypatch):
    """Eight processes finish at about the same time into one results folder and one feature cache, racing
    to write the same cache entries: every record whole, none lost, every cache entry loadable."""
    import numpy as np

    from benchmark.cache import default_root
    from benchmark.cache_admin import entries

    monkeypatch.delenv("I2V_BENCH_CACHE", raising=False)  # the cache lives in the results folder
    res = tmp_path / "res"

    def argv(seed: int, results: Path) -> list[str]:
        return ["run", "--method", "frozen", "--backbone", "efficientnet_lite0", "--tasks", "tradeoff", "--seeds", str(seed),
                "--data-root", str(clips), "--results", str(results), "--no-progress", *TINY_TRADEOFF]

    # one run in the parent first, so the forked jobs start warm (imports, kernels), like a worker pool's
    assert main(argv(0, tmp_path / "warm-up")) == 0
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_job, args=(argv(seed, res), str(tmp_path / f"job{seed}.log"))) for seed in range(JOBS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    logs = {i: (tmp_path / f"job{i}.log").read_text() for i in range(JOBS)}
    assert [p.exitcode for p in procs] == [0] * JOBS, logs

    records = {r.seed: r for r in iter_results(res)}
    assert sorted(records) == list(range(JOBS))
    for seed, r in records.items():
        path = path_of(res, "frozen", "efficientnet_lite0", "tradeoff", seed)
        assert json.loads(path.read_text())["seed"] == seed and r.status == "ok"
    # the metric depends only on the data and the weights, not on the seed or the neighbours
    assert len({json.dumps(r.metrics, sort_keys=True) for r in records.values()}) == 1
    assert not [p for p in res.rglob("*") if p.name.endswith(".tmp")]

    cached = list(entries(default_root(res)))
    assert len(cached) == 2  # one entry per clip, however many jobs wrote it
    for entry in cached:
        assert np.load(entry.path).shape[0] == 8  # the 8 sampled frames' tokens
    stats = [r.details["feature_cache"] for r in records.values()]
    assert sum(s["hits"] + s["misses"] for s in stats) == 2 * JOBS and sum(s["misses"] for s in stats) >= 2


GATE_PLUGIN = '''
import os
import time
from pathlib import Path

from benchmark.registry import TASKS
from tasks.base import Task, TaskMeta, TaskOutput


@TASKS.register("gate")
class Gate(Task):
    """Logs its pid, then waits for the test to open the gate: the task in flight when pre-emption strikes."""
    meta = TaskMeta(name="gate", dataset="", main_metric="attempts", needs_labels=False)
    default_config = {"folder": ""}

    def evaluate(self, method, ctx):
        folder = Path(self.config["folder"])
        with open(folder / "started", "a") as f:
            f.write(f"{os.getpid()}\\n")
        deadline = time.time() + 240
        while not (folder / "open").exists():
            if time.time() > deadline:
                raise RuntimeError("the test never opened the gate")
            time.sleep(0.05)
        return TaskOutput({"attempts": float(len((folder / "started").read_text().split()))})
'''


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_preempted_job_is_requeued_and_finishes_every_result_once(clips, tmp_path, monkeypatch):
    """SIGUSR2 (Slurm's pre-emption warning) mid-task: submitit calls BenchJob.checkpoint, requeues, and the
    new process skips the finished task and completes the interrupted one."""
    import submitit

    from benchmark.runner import BenchJob, RunSpec

    monkeypatch.setenv("PYTHONPATH", str(REPO))
    plugin, gate = tmp_path / "gate.py", tmp_path / "gate"
    plugin.write_text(GATE_PLUGIN)
    gate.mkdir()
    res = tmp_path / "res"
    spec = RunSpec(method="frozen", backbone="efficientnet_lite0", tasks=["tradeoff", "gate"], results=res,
                   data_root=clips, plugins=[str(plugin)], progress=False, device="cpu",
                   overrides={"tradeoff": {"num_frames": 8, "resize_short": 64, "crop": 64}, "gate": {"folder": str(gate)}})
    executor = submitit.LocalExecutor(tmp_path / "jobs", max_num_timeout=1)
    executor.update_parameters(timeout_min=30)  # far from timing out: the signal reads as a pre-emption
    job = executor.submit(BenchJob(spec))

    _wait_for(lambda: (gate / "started").exists(), 300, "the gate task to start")
    first = int((gate / "started").read_text().split()[0])
    done = path_of(res, "frozen", "efficientnet_lite0", "tradeoff", 0)
    before = done.read_bytes()
    os.kill(first, signal.SIGUSR2)
    _wait_for(lambda: not _alive(first), 60, "the pre-empted process to exit")
    assert not list(res.glob("frozen/efficientnet_lite0/gate/*/seed0.json"))
    (gate / "open").touch()

    outcome = job.result()
    pids = [int(p) for p in (gate / "started").read_text().split()]
    assert len(pids) == 2 and pids[0] != pids[1]  # the gate ran in a second, requeued process
    assert [(o.task, o.status) for o in outcome] == [("tradeoff", "present"), ("gate", "ok")]
    assert done.read_bytes() == before  # the finished task was not recomputed
    gated = json.loads(path_of(res, "frozen", "efficientnet_lite0", "gate", 0).read_text())
    assert gated["metrics"] == {"attempts": 2.0}
    assert sorted(p.relative_to(res).parts[2] for p in res.glob("*/*/*/*/seed*.json")) == ["gate", "tradeoff"]
    assert "preempted" in (job.stderr() or "") + (job.stdout() or "")


def test_doctor_reports_weights_and_folders(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "dino_vitbase16_pretrain.pth").write_bytes(b"\0" * 16)
    monkeypatch.setenv("I2V_BENCH_WEIGHTS", str(weights))
    monkeypatch.setenv("I2V_BENCH_CACHE", str(tmp_path / "cache"))

    for module in ("torch", "torchvision", "timm", "av", "decord", "huggingface_hub"):  # imports are not the checks
        importlib.import_module(module)
    t0 = time.process_time()
    assert main(["doctor", "--results", str(tmp_path / "res")]) == 0
    assert time.process_time() - t0 < 10
    out = capsys.readouterr().out
    rows: dict[str, list[str]] = {}
    for ln in out.splitlines():  # a cell wrapped to fit 100 columns continues on rows with an empty item
        if ln.startswith("| "):
            item, *cells = [c.strip() for c in ln.split("|")[1:-1]]
            if item:
                rows[last := item] = cells
            else:
                rows[last] = [f"{a}{b}" for a, b in zip(rows[last], cells)]
    for item in ("python", "torch", "torchvision", "timm", "av", "results folder", "cache folder", "efficientnet_lite0"):
        assert rows[item][0] == "OK", (item, rows[item])
    assert rows["dino"][0] == "OK" and str(weights) in rows["dino"][1]
    assert rows["mae"][0] == "MISSING"
    (fix,) = [ln for ln in out.split("\n\n") if ln.startswith("to fix:")]
    assert "mae: download mae_pretrain_vit_base.pth from\n    https://dl.fbaipublicfiles.com" in fix
    assert max(map(len, out.splitlines())) <= 100  # fits a terminal and a log viewer
    assert not (tmp_path / "res").exists()  # checked, not created

    (tmp_path / "blocker").write_text("a file")
    assert main(["doctor", "--results", str(tmp_path / "blocker" / "res")]) == 1
    out = capsys.readouterr().out
    assert "MISSING (essential)" in out and "not ready: fix results folder" in out


def test_two_bench_run_processes_on_one_folder_compute_the_job_once(tmp_path):
    """Two `bench run` processes start the same job on one results folder: the second waits on the job's lock
    (the one sweeps take), then finds the record written and skips it; the task runs once."""
    import subprocess
    import sys

    plugin, gate = tmp_path / "gate.py", tmp_path / "gate"
    plugin.write_text(GATE_PLUGIN)
    gate.mkdir()
    argv = [sys.executable, "-m", "benchmark.cli", "run", "--method", "frozen", "--backbone", "vit_tiny_random",
            "--plugin", str(plugin), "--tasks", "gate", "--set", f"gate.folder={gate}", "--results", str(tmp_path / "res"),
            "--no-progress", "--no-cache", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "I2V_BENCH_CACHE": str(tmp_path / "cache")}
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (gate / "started").exists(), 120, "the first run to start its task")
        log2 = tmp_path / "second.err"
        with open(log2, "w") as err_file:
            second = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err_file, text=True)
        try:  # the second process gets as far as the lock, and no further, while the first holds it
            _wait_for(lambda: second.poll() is not None or "another process is running" in log2.read_text(), 120,
                      "the second run to wait on the lock")
            time.sleep(1)
            assert second.poll() is None and len((gate / "started").read_text().split()) == 1, log2.read_text()
            (gate / "open").touch()
            out2, _ = second.communicate(timeout=120)
        finally:
            second.kill()
        _, err1 = first.communicate(timeout=120)
    finally:
        first.kill()
    err2 = log2.read_text()
    assert (first.returncode, second.returncode) == (0, 0), (err1, err2)
    assert len((gate / "started").read_text().split()) == 1  # evaluated once, by the first process
    assert "another process is running this job" in err2 and "waiting for it" in err2, err2
    assert "attempts=1.0000" in err1 and "attempts=" not in err2
    record = json.loads(path_of(tmp_path / "res", "frozen", "vit_tiny_random", "gate", 0).read_text())
    assert record["metrics"] == {"attempts": 1.0} and "gate attempts" in out2  # the second prints the one result
