"""A real one-node Slurm cluster for the tests: munged, slurmctld and slurmd under a temporary folder.

Debian's ``slurmctld``, ``slurmd``, ``slurm-client`` and ``munge`` (``make slurm`` installs them) run
as root with a ``slurm.conf`` written here (the recipe of ../shared/README.md): its own munge socket
and key, its own ports, state and spool folders, so it never meets a cluster the machine already runs.
Every daemon runs in the foreground as a child of the test process (and is killed if that
process dies), so stopping it stops exactly what was started. Clients find the cluster through
``SLURM_CONF`` (:meth:`SlurmCluster.env`).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "sbatch", "srun", "scontrol", "scancel", "squeue")
PARTITION = "debug"

CONF = """\
ClusterName=i2vtest
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job waits this long before it may start again (default 120 s)
AuthInfo=socket={root}/munge/munge.socket,cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# a node a test sets DOWN stays down until `scontrol update state=resume` (as on most clusters)
ReturnToService=1
# finished jobs stay visible to `scontrol show job` for the rest of the session
MinJobAge=3600
KillWait=5
InactiveLimit=0
SchedulerParameters=sched_interval=2
NodeName={host} CPUs={cpus} RealMemory={mem_mib} State=UNKNOWN
PartitionName={partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def unavailable() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the Slurm test cluster runs its daemons as root (SlurmUser=root); run the tests as root"
    missing = [p for p in (*DAEMONS, *CLIENTS) if shutil.which(p) is None
               and not Path("/usr/sbin", p).exists()]
    if missing:
        return f"Slurm daemons/clients not installed ({', '.join(missing)}): `make slurm` installs Debian's packages"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies, so no daemon outlives a killed test run (slurmd
    can sit out a SIGTERM while it cannot reach the controller)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    """One node (this host, all its CPUs, 90 % of its memory) in one default partition."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="i2v-slurm-"))
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.procs: dict[str, subprocess.Popen] = {}

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        """Run a Slurm client command against this cluster; its stdout."""
        out = subprocess.run(args, env=self.env(), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                             check=False)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
        return out.stdout

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.root / f"{name}.out", "ab") as log:  # the child keeps its own descriptor
            self.procs[name] = subprocess.Popen(
                [_exe(name), *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env(),
                preexec_fn=_die_with_parent)  # noqa: PLW1509 - only prctl, safe after fork

    def start(self, timeout: float = 60) -> None:
        """Write the config and key, start the three daemons, wait until the node is idle."""
        for d in ("munge", "state", "spool"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        (self.root / "munge").chmod(0o755)  # munged wants its socket folder readable by all clients
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem_kib = int(next(ln.split()[1] for ln in meminfo if ln.startswith("MemTotal:")))
        self.conf.write_text(CONF.format(
            host=self.host, root=self.root, ctld_port=_free_port(), slurmd_port=_free_port(),
            cpus=os.cpu_count(), mem_mib=int(mem_kib / 1024 * 0.9), partition=PARTITION))
        m = self.root / "munge"
        self._spawn("munged", "-F", "--force", f"--socket={m}/munge.socket", f"--key-file={key}",
                    f"--log-file={m}/munged.log", f"--pid-file={m}/munged.pid", f"--seed-file={m}/munged.seed")
        self.wait(lambda: (m / "munge.socket").exists(), 15, "munged's socket")
        self._spawn("slurmctld", "-D", "-f", str(self.conf))
        self._spawn("slurmd", "-D", "-f", str(self.conf))
        self.wait(lambda: self.node_state() == "idle", timeout, "the node to be idle in sinfo")

    def node_state(self) -> str:
        try:
            return self.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=10).strip()
        except subprocess.TimeoutExpired:
            return ""

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while not predicate():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.time() > deadline:
                raise RuntimeError(f"timed out waiting for {what}" + (f"; {', '.join(dead)} exited" if dead else "")
                                   + f"\n{self.logs()}")
            time.sleep(0.3)

    def logs(self, lines: int = 15) -> str:
        out = []
        for f in sorted(self.root.glob("*.log")) + sorted(self.root.glob("*.out")):
            tail = f.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {f.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (the first record for an array job id)."""
        text = self.run("scontrol", "-o", "show", "job", str(job_id))
        first = text.splitlines()[0] if text.strip() else ""
        return dict(part.split("=", 1) for part in first.split() if "=" in part)

    def queue(self) -> list[str]:
        """Job ids (array tasks as ``<array>_<k>``) still pending or running."""
        return self.run("squeue", "-h", "-o", "%i").split()

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld and munged (terminate, then kill)."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--user=root", check=False, timeout=10)
                deadline = time.time() + 20
                while self.queue() and time.time() < deadline:
                    time.sleep(0.5)
            except (subprocess.TimeoutExpired, RuntimeError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def running_cluster():
    """Body of a module-scoped fixture: a started cluster, stopped and removed afterwards; the test skips
    with the reason where the daemons cannot be had (not root, packages missing, failed start)."""
    import pytest

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    c = SlurmCluster()
    try:
        c.start()
    except Exception as e:  # noqa: BLE001 - any failure to start means the cluster cannot be had here
        c.stop()
        pytest.skip(f"the Slurm test cluster did not come up (logs in {c.root}): {str(e).splitlines()[0]}")
    yield c
    c.stop()
    shutil.rmtree(c.root, ignore_errors=True)
