"""`bench sweep --executor slurm` against a real one-node Slurm cluster (tests/slurm_cluster.py).

Each test runs the toy suite's cheapest work (frozen or a few Co-Settle iterations on
efficientnet_lite0, the tradeoff task at 64 px) and does to it what a cluster does to a sweep: a
bounded job array, pre-emption, a time limit, a node going down, the user cancelling everything. Where the Slurm
daemons cannot be had (not root, packages missing) the cluster tests skip with the reason; the
partition-fitting tests at the end need no cluster.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.errors import UserError
from benchmark.slurm import Partition, fit_to_partition, gpu_count

sys.path.insert(0, str(Path(__file__).parent))
from slurm_cluster import SlurmCluster, running_cluster
from tests.gated_plugin import TOY_COSETTLE, gated_method

REPO = Path(__file__).resolve().parent.parent
FAST = ["--tasks", "tradeoff", "--set", "tradeoff.num_frames=8", "--set", "tradeoff.resize_short=64",
        "--set", "tradeoff.crop=64", "--no-progress", "--executor", "slurm"]


@pytest.fixture(scope="module")
def cluster():
    """Up for this module only (about 2 s to start): the daemons are gone before the next test file runs."""
    yield from running_cluster()


@pytest.fixture
def slurm(cluster, monkeypatch, tmp_path):
    """The cluster, with SLURM_CONF (and the repository, for the jobs' imports) in this process's environment."""
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    yield cluster
    cluster.run("scancel", "--user=root", check=False)  # a failed test leaves no job behind for the next one
    if cluster.node_state() not in ("idle", "mixed", "allocated"):
        cluster.run("scontrol", "update", f"nodename={cluster.host}", "state=resume", check=False)


def executor_config(tmp_path: Path, extra: str = "") -> Path:
    """One CPU and 2 GB per job so two jobs fit the node at once; the default ``gpus_per_node: 1`` stays."""
    path = tmp_path / "executor.yaml"
    path.write_text(f"slurm: {{cpus_per_task: 1, mem_gb: 2{extra}}}\n")
    return path


def sweep_args(toy_root: Path, res: Path, cfg: Path, methods: str, backbones: str, *extra: str) -> list[str]:
    return ["sweep", "--methods", methods, "--backbones", backbones, "--suite", "toy", "--data-root", str(toy_root),
            "--results", str(res), "--executor-config", str(cfg), *FAST, *extra]


def start_sweep(args: list[str], log: Path) -> subprocess.Popen:
    """The sweep in its own process, as a user starts it in a shell (the test then acts on its jobs)."""
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 240) -> str:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the sweep did not end in {timeout} s:\n{log.read_text()}") from None
    return log.read_text()


def ledger_jobs(res: Path, cluster: SlurmCluster, timeout: float = 120) -> dict[str, dict]:
    """The running sweep's jobs (key -> entry holding its Slurm id) once it has submitted them."""
    def submitted() -> bool:
        found = max((res / "jobs").glob("sweep-*.json"), default=None)
        return found is not None and all("job_id" in j for j in json.loads(found.read_text())["jobs"].values())

    cluster.wait(submitted, timeout, "the sweep to submit its jobs")
    return json.loads(max((res / "jobs").glob("sweep-*.json")).read_text())["jobs"]


def state(cluster: SlurmCluster, job_id: str) -> str:
    return cluster.job(job_id).get("JobState", "")


def results(res: Path) -> dict[str, dict]:
    """``backbone/task__seed<k>.json -> record`` of the current records (stale ones set aside are skipped)."""
    return {f"{p.parts[-4]}/{p.parts[-3]}__{p.stem}.json": json.loads(p.read_text())
            for p in sorted(res.glob("*/*/*/*/seed*.json")) if ".stale-" not in p.name}


def test_bounded_array_status_and_a_rerun_that_submits_nothing(slurm, toy_root, tmp_path, capsys):
    """Two jobs in one array with parallelism 1: never both running; `--status` shows one running and one
    queued with their Slurm ids and logs; the partition-fit and accounting notes come once; rerun submits nothing."""
    res, log, gate = tmp_path / "res", tmp_path / "sweep.log", tmp_path / "gate"
    args = sweep_args(toy_root, res, executor_config(tmp_path), "gated_frozen", "efficientnet_lite0,vit_tiny_random",
                      "--max-parallel", "1", "--plugin", str(gated_method(tmp_path, gate)))
    proc = start_sweep(args, log)
    jobs = ledger_jobs(res, slurm)
    ids = sorted(j["job_id"] for j in jobs.values())
    assert len(ids) == 2 and ids[0].split("_")[0] == ids[1].split("_")[0]  # one array
    slurm.wait(lambda: state(slurm, ids[0]) == "RUNNING", 120, "the first array task to run")
    assert main(["sweep", "--status", "--results", str(res)]) == 0
    shown = capsys.readouterr().out
    assert "1 queued, 1 running, 0 done, 0 failed" in shown, shown
    for key, job in jobs.items():
        row = next(line for line in shown.splitlines() if line.startswith(key))
        assert job["job_id"] in row and job["stderr"] in row

    gate.touch()  # the first job waited in `fit` until now, so the status above saw it running
    out = finish(proc, log)
    assert proc.returncode == 0, out
    assert out.count("no GPU GRES") == 1 and out.count("accounting storage is off") == 1, out
    assert "Bypassing sacct" not in out and "Traceback" not in out, out
    slurm.wait(lambda: all(state(slurm, i) == "COMPLETED" for i in ids), 60, "both jobs to complete")
    info = [slurm.job(i) for i in ids]
    assert info[0]["ArrayTaskThrottle"] == "1"
    assert info[1]["StartTime"] >= info[0]["EndTime"]  # the bound held: the second ran after the first
    assert [r["status"] for r in results(res).values()] == ["ok", "ok"]

    before = set(slurm.run("squeue", "-h", "--states=all", "-o", "%A").split())
    folders = sorted((res / "jobs").glob("sweep-*"))  # log folders and ledgers
    assert main(args) == 0
    assert "0 to submit" in capsys.readouterr().err
    assert set(slurm.run("squeue", "-h", "--states=all", "-o", "%A").split()) == before
    assert sorted((res / "jobs").glob("sweep-*")) == folders


def test_preempted_training_job_resumes_from_its_checkpoint_to_one_result(slurm, toy_root, tmp_path):
    """`scancel --signal=USR2` mid-training: submitit checkpoints and requeues, the requeued job resumes
    the training from its saved state, and one result holds every iteration exactly once. The training
    waits after its first checkpoint until the signal is sent, so the signal cannot come after the end."""
    res, log, gate = tmp_path / "res", tmp_path / "sweep.log", tmp_path / "gate"
    args = sweep_args(toy_root, res, executor_config(tmp_path), "gated_cosettle", "efficientnet_lite0",
                      "--plugin", str(gated_method(tmp_path, gate)),
                      *(f"--set=gated_cosettle.{kv}" for kv in TOY_COSETTLE), "--set", "gated_cosettle.epochs=5",
                      "--set", "gated_cosettle.checkpoint_every_iters=1")
    proc = start_sweep(args, log)
    (job,) = ledger_jobs(res, slurm).values()
    slurm.wait(lambda: any(res.glob("checkpoints/**/state.pt")), 180, "the first training checkpoint")
    slurm.run("scancel", "--signal=USR2", job["job_id"])
    slurm.wait(lambda: int(slurm.job(job["job_id"])["Restarts"]) >= 1, 120, "the signal to requeue the job")
    gate.touch()
    out = finish(proc, log)
    assert proc.returncode == 0, out
    (record,) = results(res).values()
    training = record["training"]
    assert record["status"] == "ok" and 1 <= training["resumed_from_iteration"] < training["iterations"]
    assert [c["iteration"] for c in training["curve"]] == list(range(1, training["iterations"] + 1))


# waits on Slurm's time-limit check (~30 s period): about a minute of `make test`
def test_job_at_its_time_limit_is_requeued_and_resumes(slurm, toy_root, tmp_path):
    """A job submitted with a 2-minute limit and the USR2 warning 110 s before it: the test holds the limit
    off until training has a checkpoint, then puts it back while training waits after that checkpoint; Slurm
    sends the warning, submitit sees a time-out, checkpoints and requeues. Slurm gives the requeued run the
    same limit, so the test lifts it again, and the run resumes to one result."""
    res, log, gate = tmp_path / "res", tmp_path / "sweep.log", tmp_path / "gate"
    cfg = executor_config(tmp_path, ", timeout_min: 2, signal_delay_s: 110")
    args = sweep_args(toy_root, res, cfg, "gated_cosettle", "efficientnet_lite0",
                      "--plugin", str(gated_method(tmp_path, gate)),
                      *(f"--set=gated_cosettle.{kv}" for kv in TOY_COSETTLE), "--set", "gated_cosettle.epochs=5",
                      "--set", "gated_cosettle.checkpoint_every_iters=1")
    proc = start_sweep(args, log)
    (job,) = ledger_jobs(res, slurm).values()
    limit = ("scontrol", "update", f"jobid={job['job_id']}")
    slurm.run(*limit, "timelimit=60")  # the warning would come 10 s in, before training has started
    slurm.wait(lambda: any(res.glob("checkpoints/**/state.pt")), 180, "the first training checkpoint")
    slurm.run(*limit, "timelimit=2")
    slurm.wait(lambda: int(slurm.job(job["job_id"])["Restarts"]) >= 1, 120, "the time-limit warning to requeue the job")
    slurm.run(*limit, "timelimit=60")
    gate.touch()
    out = finish(proc, log)
    assert proc.returncode == 0, out
    assert "this job is timed-out" in Path(job["stderr"]).read_text()
    (record,) = results(res).values()
    training = record["training"]
    assert record["status"] == "ok" and 1 <= training["resumed_from_iteration"] < training["iterations"]
    assert [c["iteration"] for c in training["curve"]] == list(range(1, training["iterations"] + 1))


def test_node_down_mid_job_leaves_a_failure_the_next_run_retries(slurm, toy_root, tmp_path, capsys):
    """A job not requeued by Slurm (``no_requeue``) dies with its node: one failure record names the state
    and the log; after the node is resumed, the rerun retries exactly that and writes the result."""
    res, log, gate = tmp_path / "res", tmp_path / "sweep.log", tmp_path / "gate"
    args = sweep_args(toy_root, res, executor_config(tmp_path, ", additional: {no_requeue: true}"),
                      "gated_frozen", "efficientnet_lite0", "--plugin", str(gated_method(tmp_path, gate)))
    proc = start_sweep(args, log)
    (job,) = ledger_jobs(res, slurm).values()
    slurm.wait(lambda: state(slurm, job["job_id"]) == "RUNNING", 120, "the job to run")
    slurm.run("scontrol", "update", f"nodename={slurm.host}", "state=down", "reason=i2v-bench test")  # job still gated
    out = finish(proc, log)
    assert proc.returncode == 1, out
    (record,) = results(res).values()
    assert record["status"] == "failed" and "NODE_FAIL" in record["error"] and job["stderr"] in record["error"]

    slurm.run("scontrol", "update", f"nodename={slurm.host}", "state=resume")
    slurm.wait(lambda: slurm.node_state() == "idle", 60, "the node to be idle again")
    gate.touch()
    assert main(args) == 0
    assert "(1 retries of failures)" in capsys.readouterr().err
    assert [r["status"] for r in results(res).values()] == ["ok"]


def test_cancelled_sweep_reruns_to_every_result_exactly_once(slurm, toy_root, tmp_path, capsys):
    """`scancel` of the whole array while its first job runs: the sweep records each job as failed and ends;
    the rerun submits them again and every result exists once, complete."""
    res, log, gate = tmp_path / "res", tmp_path / "sweep.log", tmp_path / "gate"
    args = sweep_args(toy_root, res, executor_config(tmp_path), "gated_frozen", "efficientnet_lite0,vit_tiny_random",
                      "--max-parallel", "1", "--plugin", str(gated_method(tmp_path, gate)))
    proc = start_sweep(args, log)
    jobs = ledger_jobs(res, slurm)
    first = min((j["job_id"] for j in jobs.values()), key=lambda i: int(i.split("_")[1]))
    slurm.wait(lambda: state(slurm, first) == "RUNNING", 120, "the first job to run")  # gated: still running
    slurm.run("scancel", first.split("_")[0])
    out = finish(proc, log)
    cancelled = out.count("ended CANCELLED without a result")
    assert proc.returncode == 1 and cancelled >= 1, out

    gate.touch()

    assert main([a for a in args if a not in ("--max-parallel", "1")]) == 0  # what is missing, at once this time
    assert f"{cancelled} to submit" in capsys.readouterr().err
    done = results(res)
    assert sorted(done) == ["efficientnet_lite0/tradeoff__seed0.json", "vit_tiny_random/tradeoff__seed0.json"]
    assert all(r["status"] == "ok" for r in done.values())


def test_no_slurm_commands_is_one_line_and_exit_2(toy_root, tmp_path, monkeypatch, capsys):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    res = tmp_path / "res"
    assert main(sweep_args(toy_root, res, executor_config(tmp_path), "frozen", "efficientnet_lite0")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--executor slurm needs sbatch and srun on PATH" in err[-1] and "--executor local" in err[-1]
    assert not (res / "jobs").exists() and not list(res.glob("*/*/*.json"))


def test_an_unknown_partition_is_one_line_naming_the_setting(slurm, toy_root, tmp_path, capsys):
    cfg = executor_config(tmp_path, ", partition: nosuch")
    assert main(sweep_args(toy_root, tmp_path / "res", cfg, "frozen", "efficientnet_lite0")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "slurm.partition='nosuch'" in err and "partitions: debug" in err


def dead_controller_conf(folder: Path) -> Path:
    """A slurm.conf whose controller port nothing listens on (a port just bound and released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = folder / "slurm.conf"
    conf.write_text(f"ClusterName=nowhere\nSlurmctldHost=localhost\nSlurmctldPort={port}\nAuthType=auth/munge\n"
                    "MessageTimeout=1\n"  # sinfo gives up at once instead of retrying for 9 s
                    "NodeName=localhost CPUs=1 State=UNKNOWN\nPartitionName=p Nodes=localhost Default=YES\n")
    return conf


@pytest.mark.skipif(not shutil.which("sinfo"), reason="Slurm's client commands are not installed")
@pytest.mark.parametrize("conf, said", [
    ("no-such-slurm.conf", "no such file: point it at the cluster's slurm.conf"),  # refused before sinfo's 60 s of retries
    ("dead", "sinfo cannot reach the Slurm controller"),
])
def test_no_reachable_controller_is_one_line_before_anything_is_planned(toy_root, tmp_path, monkeypatch, capsys, conf, said):
    """A missing SLURM_CONF, or sinfo failing to reach the controller, is refused by the preflight,
    --dry-run included."""
    path = dead_controller_conf(tmp_path) if conf == "dead" else tmp_path / conf
    monkeypatch.setenv("SLURM_CONF", str(path))
    args = sweep_args(toy_root, tmp_path / "res", executor_config(tmp_path), "frozen", "efficientnet_lite0")
    assert main([*args, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0] and str(path if conf != "dead" else "SLURM_CONF") in err[0], err
    assert not (tmp_path / "res").exists()


def test_gpu_requests_fit_the_partition():
    assert [gpu_count(g) for g in ("(null)", "gpu:4", "gpu:a100:2(S:0-1),shard:8", "gpu:1,gpu:v100:2")] == [0, 4, 2, 3]
    cfg = {"gpus_per_node": 1, "cpus_per_task": 10, "mem_gb": 64}
    fitted, note = fit_to_partition(cfg, Partition("cpu", cpus=2, mem_gb=20, gpus=0, gres="(null)"))
    assert fitted == {"gpus_per_node": 0, "cpus_per_task": 2, "mem_gb": 20}
    assert note.startswith("slurm: partition cpu: no GPU GRES") and note.count("\n") == 0
    assert fit_to_partition(cfg, Partition("gpu", cpus=64, mem_gb=512, gpus=8, gres="gpu:8")) == (cfg, None)
    with pytest.raises(UserError, match=r"slurm.gpus_per_node=4, but the nodes of partition gpu have at most 2 GPUs"):
        fit_to_partition({**cfg, "gpus_per_node": 4}, Partition("gpu", cpus=64, mem_gb=512, gpus=2, gres="gpu:2"))


def test_the_job_time_limit_fits_the_partitions():
    """The default timeout_min (3 days) is more than most partitions allow, and sbatch refuses such a job: it is
    capped at the partition's limit (sinfo %l), said in the same one line."""
    from benchmark.slurm import minutes

    assert [minutes(s) for s in ("infinite", "UNLIMITED", "30", "30:45", "2:00:00", "1-00:00:00", "2-12", "7-0:30")] == \
        [None, None, 30, 30, 120, 1440, 3600, 10110]
    cfg = {"gpus_per_node": 0, "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 4320}
    fitted, note = fit_to_partition(cfg, Partition("short", cpus=2, mem_gb=20, gpus=0, gres="(null)", max_minutes=120))
    assert fitted["timeout_min"] == 120 and fitted["max_num_timeout"] == 36 + 3  # requeues enough for 3 days
    assert note == ("slurm: partition short: a time limit of 120 min, so timeout_min 4320 becomes 120 (a job at the "
                    "limit checkpoints and is requeued, up to 39 times)")
    unlimited = Partition("long", cpus=2, mem_gb=20, gpus=0, gres="(null)", max_minutes=None)
    assert fit_to_partition(cfg, unlimited) == (cfg, None)


def test_status_of_a_job_slurm_forgot_or_completed_comes_from_its_own_result(tmp_path):
    """After MinJobAge Slurm no longer knows a finished job (GONE), and COMPLETED includes a job whose tasks
    failed: the status reads the job's result pickle (submitit's) instead; with none, Slurm's word stands."""
    import pickle

    from benchmark.runner import Outcome
    from benchmark.sweep_status import _live_state

    doc = {"executor": "slurm", "host": "h"}
    cases = {"ok": ("success", [Outcome("davis", "ok")]),
             "task": ("success", [Outcome("davis", "ok"), Outcome("vip", "failed")]), "error": ("error", "Traceback …")}
    for name, result in cases.items():
        (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(result))
    job = {"state": "submitted", "job_id": "7_0"}
    for slurm_state in ("GONE", "COMPLETED"):
        got = [_live_state(doc, {**job, "result": str(tmp_path / f"{n}.pkl")}, {"7_0": slurm_state}) for n in cases]
        assert got == ["done", "failed (1 task)", "failed (error)"]
    assert _live_state(doc, {**job, "result": str(tmp_path / "none.pkl")}, {"7_0": "GONE"}) == "failed (gone)"
    assert _live_state(doc, job, {"7_0": "COMPLETED"}) == "done"
    assert _live_state(doc, {**job, "result": str(tmp_path / "ok.pkl")}, {"7_0": "RUNNING"}) == "running"
    assert _live_state(doc, {**job, "result": str(tmp_path / "ok.pkl")}, {}) == "done"  # squeue failed: the result speaks
    assert _live_state(doc, job, {}) == "unknown (squeue failed)"


def test_a_silent_controller_or_no_sacct_is_handled_in_one_line(monkeypatch):
    """sinfo timing out is one line naming the check; sacct missing or hanging means accounting is off."""
    import benchmark.slurm as slurm

    def timeout(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], 60)

    monkeypatch.setattr(slurm, "_call", timeout)
    with pytest.raises(UserError, match=r"sinfo had no answer from the Slurm controller within 60 s: .*scontrol ping"):
        slurm.partition_info(None)
    assert slurm.accounting_off()

    def missing(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "sacct")

    monkeypatch.setattr(slurm, "_call", missing)
    assert slurm.accounting_off()
