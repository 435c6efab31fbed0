"""One training job on several processes: torch DDP on CPU with gloo, launched by torchrun and by a
2-task Slurm job (the real one-node cluster of tests/slurm_cluster.py; skipped where it cannot run).

The trainer's promise is that world size changes nothing but speed: the same global batch, lr and
checkpoints give the same loss curve as one process, only rank 0 writes, and a run resumes from
its checkpoint on every rank.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from benchmark import distributed
from benchmark.errors import UserError
from benchmark.results import iter_results
from methods.training import epoch_batches
from tests.gated_plugin import TOY_COSETTLE, gated_method

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("ddp_worker", REPO / "tests" / "ddp_worker.py")
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


def test_each_rank_gets_its_share_of_every_global_batch(monkeypatch):
    """Two ranks' batches, put side by side, are exactly the one-process batches; an odd split is refused."""
    whole = epoch_batches(10, 4, seed=1, epoch=2)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    shares = []
    for r in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        shares.append(epoch_batches(10, 4, seed=1, epoch=2))
    assert [a + b for a, b in zip(*shares)] == whole and all(len(b) == 2 for s in shares for b in s)
    with pytest.raises(UserError, match="train_batch_size=6 does not split over 4 processes"):
        monkeypatch.setattr(distributed, "world_size", lambda: 4)
        epoch_batches(10, 6, seed=1, epoch=2)


def test_two_processes_match_one_and_resume_from_the_checkpoint(tmp_path):
    """torchrun with 2 gloo ranks, half the global batch each, killed after iteration 3 and resumed: the
    same loss and lr curve and the same weights as one process on the whole batch; rank 1 never wrote
    (its writers fail in the worker); lr and iterations follow the global batch."""
    one = worker.train(tmp_path / "one")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "tests.ddp_worker", str(tmp_path / "two"), "3"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "record.json").read_text())
    assert (one["world_size"], two["world_size"], two["resumed_from_iteration"]) == (1, 2, 3)
    assert [c["iteration"] for c in two["curve"]] == [c["iteration"] for c in one["curve"]] == list(range(1, 7))
    assert [c["batch_items"] for c in two["curve"]] == [4.0] * 6 and [c["batch_items"] for c in one["curve"]] == [8.0] * 6
    assert [c["lr"] for c in two["curve"]] == pytest.approx([c["lr"] for c in one["curve"]], rel=1e-12)
    assert [c["loss"] for c in two["curve"]] == pytest.approx([c["loss"] for c in one["curve"]], rel=1e-5)
    a, b = (load_file(str(tmp_path / k / "weights.safetensors")) for k in ("one", "two"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not torch.equal(a["body.0.weight"], worker.Net().body[0].weight.detach())  # it trained


def test_torchrun_bench_run_trains_cosettle_on_two_ranks_as_on_one(toy_root, tmp_path):
    """The README's one-machine launch, ``torchrun -m benchmark.cli run``, on a real method: Co-Settle on the
    toy suite with 2 gloo ranks gives one process's loss curve (the same global batch of 4, split 2 + 2),
    and rank 0 alone writes the one result."""
    from benchmark.cli import main

    def argv(results: Path) -> list[str]:
        return ["run", "--method", "cosettle", "--backbone", "efficientnet_lite0", "--suite", "toy", "--data-root",
                str(toy_root), "--results", str(results), "--tasks", "tradeoff", "--set", "tradeoff.num_frames=8",
                "--set", "cosettle.epochs=2", "--set", "cosettle.warmup_epochs=0", "--no-progress", "--no-cache"]

    assert main(argv(tmp_path / "one")) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "benchmark.cli", *argv(tmp_path / "two")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    (one,), (two,) = (list(iter_results(tmp_path / k)) for k in ("one", "two"))
    assert (one.training["world_size"], two.training["world_size"]) == (1, 2) and two.status == "ok"
    assert [c["iteration"] for c in two.training["curve"]] == [c["iteration"] for c in one.training["curve"]]
    assert [c["loss"] for c in two.training["curve"]] == pytest.approx([c["loss"] for c in one.training["curve"]], rel=1e-4)
    assert two.metrics == pytest.approx(one.metrics, rel=1e-4)


sys.path.insert(0, str(REPO / "tests"))
from slurm_cluster import running_cluster


@pytest.fixture(scope="module")
def slurm():
    """The real one-node cluster (as tests/test_slurm.py starts it), up for this module only."""
    yield from running_cluster()


def test_two_task_slurm_job_trains_with_ddp_resumes_and_writes_one_result(slurm, toy_root, tmp_path):
    """A Co-Settle job with ``tasks_per_node: 2`` on the CPU partition: 2 gloo ranks train, a pre-emption
    (``scancel --signal=USR2``) requeues the job, both ranks resume from the checkpoint and rank 0 alone
    writes the one result, its curve holding every iteration once."""
    res, log, gate = tmp_path / "res", tmp_path / "sweep.log", tmp_path / "gate"
    (tmp_path / "executor.yaml").write_text("slurm: {cpus_per_task: 1, tasks_per_node: 2, mem_gb: 4}\n")
    args = ["sweep", "--methods", "gated_cosettle", "--backbones", "efficientnet_lite0", "--suite", "toy",
            "--data-root", str(toy_root), "--results", str(res), "--executor-config", str(tmp_path / "executor.yaml"),
            "--plugin", str(gated_method(tmp_path, gate)), "--tasks", "tradeoff", "--set", "tradeoff.num_frames=8",
            "--set", "tradeoff.resize_short=64", "--set", "tradeoff.crop=64",
            *(f"--set=gated_cosettle.{kv}" for kv in TOY_COSETTLE), "--set", "gated_cosettle.epochs=5",
            "--set", "gated_cosettle.checkpoint_every_iters=1", "--no-progress", "--executor", "slurm"]
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO, env={**slurm.env(), "PYTHONPATH": str(REPO)})
    try:  # the ranks wait after the first checkpoint until the pre-emption has requeued the job
        slurm.wait(lambda: any(res.glob("checkpoints/**/state.pt")), 240, "the first training checkpoint")
        (job,) = json.loads(max((res / "jobs").glob("sweep-*.json")).read_text())["jobs"].values()
        slurm.run("scancel", "--signal=USR2", job["job_id"])
        slurm.wait(lambda: int(slurm.job(job["job_id"])["Restarts"]) >= 1, 120, "the signal to requeue the job")
        gate.touch()
        proc.wait(300)
    finally:
        proc.kill()
        slurm.run("scancel", "--user=root", check=False)
    assert proc.returncode == 0, log.read_text()
    info = slurm.job(job["job_id"])
    assert int(info["Restarts"]) >= 1 and info["NumTasks"] == "2", info
    (record,) = iter_results(res)
    training = record.training
    assert record.status == "ok" and training["world_size"] == 2, log.read_text()
    assert 1 <= training["resumed_from_iteration"] < training["iterations"]
    assert [c["iteration"] for c in training["curve"]] == list(range(1, training["iterations"] + 1))


def test_ddp_requests_fit_the_partition():
    """Tasks × CPUs fit a node; a DDP job is one task per requested GPU; sbatch gets ``tasks_per_node``."""
    from benchmark.slurm import Partition, fit_to_partition
    from benchmark.sweep import executor_config, slurm_parameters

    cpu = Partition("cpu", cpus=2, mem_gb=20, gpus=0, gres="(null)")
    fitted, note = fit_to_partition({"gpus_per_node": 2, "tasks_per_node": 2, "cpus_per_task": 10, "mem_gb": 4}, cpu)
    assert (fitted["gpus_per_node"], fitted["cpus_per_task"]) == (0, 1) and "for 2 tasks" in note
    with pytest.raises(UserError, match="slurm.tasks_per_node=3"):
        fit_to_partition({"gpus_per_node": 0, "tasks_per_node": 3, "cpus_per_task": 1, "mem_gb": 4}, cpu)
    gpu = Partition("gpu", cpus=64, mem_gb=512, gpus=8, gres="gpu:8")
    with pytest.raises(UserError, match=r"tasks_per_node=4: one training process per GPU \(slurm.gpus_per_node=2\)"):
        fit_to_partition({"gpus_per_node": 2, "tasks_per_node": 4, "cpus_per_task": 8, "mem_gb": 64}, gpu)
    assert fit_to_partition({"gpus_per_node": 4, "tasks_per_node": 4, "cpus_per_task": 8, "mem_gb": 64}, gpu)[1] is None
    assert slurm_parameters(executor_config("slurm"), None)["tasks_per_node"] == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the real check")
def test_gpu_check_without_cuda_is_one_line(capsys):
    """`make gpu-check` on a machine without CUDA: one line saying nothing was measured, exit 0."""
    from benchmark.perf.gpu_check import main

    assert main([]) == 0
    assert capsys.readouterr().out.splitlines() == [f"gpu-check: no CUDA device visible (torch {torch.__version__}): nothing measured"]
