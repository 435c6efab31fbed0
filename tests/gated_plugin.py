"""A plugin file of methods that wait for a file before going on: what lets a cluster test act on a job
(pre-empt it, cancel it, take its node down) while it surely runs, however fast the machine."""
from __future__ import annotations

from pathlib import Path

# the toy suite's `cosettle` settings (configs/suites.yaml), which a plugin method of another name does not get
TOY_COSETTLE = ("train_batch_size=4", "input_size=112", "pre_resize=128", "warmup_epochs=1", "lr=1.0e-3", "num_workers=0")


def gated_method(folder: Path, gate: Path) -> Path:
    """Plugin methods that wait (up to 5 min, then fail the job) for the file ``gate``, so a job is surely still running, and
    surely mid-training, when the test acts on it, however fast the machine: ``gated_frozen`` waits in
    ``fit``; ``gated_cosettle`` waits before its second training step, after the first checkpoint is saved.
    They replace (``override``) an earlier test's copy registered in this process by an in-process rerun."""
    path = folder / "gated_method.py"
    path.write_text(
        "import time\nfrom pathlib import Path\n\nfrom benchmark.config import defaults\nfrom benchmark.registry import METHODS\n"
        "from methods.cosettle import CoSettle\nfrom methods.frozen import Frozen\n\n\n"
        "def wait():\n    deadline = time.time() + 300\n"
        f"    while not Path({str(gate)!r}).exists():\n"
        "        if time.time() > deadline:\n"
        f"            raise TimeoutError('the test never opened the gate {gate} (5 min)')\n"
        "        time.sleep(0.2)\n\n\n"
        "@METHODS.register('gated_frozen', override=True)\nclass GatedFrozen(Frozen):\n"
        "    def fit(self, ctx):\n        wait()\n        return super().fit(ctx)\n\n\n"
        "@METHODS.register('gated_cosettle', override=True)\nclass GatedCoSettle(CoSettle):\n"
        "    default_config = defaults('method', 'cosettle')\n    steps = 0\n\n"
        "    def training_step(self, batch, rng):\n        if self.steps:\n            wait()\n"
        "        self.steps += 1\n        return super().training_step(batch, rng)\n")
    return path
