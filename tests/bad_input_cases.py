"""The shared half of tests/test_bad_inputs.py: its case registry and data builders, the issue-15 examples
that used to be tracebacks or silently accepted, the damaged authors'-layout checkpoints and the results
folder cases. Kept apart so each module stays small; `test_bad_inputs.py` runs every registered case."""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN = ["run", "--method", "frozen", "--backbone", "efficientnet_lite0", "--no-progress"]
TINY_TRADEOFF = ["--set", "tradeoff.num_frames=8", "--set", "tradeoff.resize_short=64", "--set", "tradeoff.crop=64"]

# name -> builder(tmp, toy) returning (extra `bench run` arguments, substrings the error line must hold)
Case = Callable[[Path, Path], tuple[list[str], list[str]]]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


def copy_dataset(toy: Path, tmp: Path, folder: str) -> Path:
    """A private copy of one toy data set under ``tmp/data`` (the data root to pass)."""
    shutil.copytree(toy / folder, tmp / "data" / folder)
    return tmp / "data" / folder


def two_clips(toy: Path, tmp: Path) -> Path:
    out = tmp / "data" / "clips"
    out.mkdir(parents=True)
    for name in ("clip_000.mp4", "clip_001.mp4"):
        shutil.copy(toy / "clips" / name, out / name)
    return out


def davis(toy: Path, tmp: Path) -> tuple[Path, list[str]]:
    root = copy_dataset(toy, tmp, "DAVIS")
    return root, ["--tasks", "davis", "--data-root", str(tmp / "data")]


def jhmdb(toy: Path, tmp: Path) -> tuple[Path, list[str]]:
    root = copy_dataset(toy, tmp, "JHMDB")
    return root, ["--tasks", "jhmdb", "--data-root", str(tmp / "data")]


def tiny_vit_state(drop: str | None = None, extra: str | None = None) -> dict:
    """A one-block ViT-Ti state dict in MAE's release layout ({"model": ...}), optionally damaged."""
    import timm
    import torch

    state = timm.create_model("vit_tiny_patch16_224", depth=1, num_classes=0).state_dict()
    if drop:
        del state[drop]
    if extra:
        state[extra] = torch.zeros(3)
    return {"model": state}


# --- data -----------------------------------------------------------------------------------------


# --- checkpoints ----------------------------------------------------------------------------------

def with_weights(path: Path) -> list[str]:
    return ["--backbone", "mae", "--weights", str(path), "--tasks", "tradeoff", "--data-root", str(path.parent)]


@case
def checkpoint_missing_keys(tmp, toy):
    import torch

    path = tmp / "mae.pth"
    torch.save(tiny_vit_state(drop="blocks.0.norm1.weight"), path)
    return with_weights(path), [str(path), "missing 1 keys (e.g. blocks.0.norm1.weight)", "use the backbone that matches"]


@case
def checkpoint_unexpected_keys(tmp, toy):
    import torch

    path = tmp / "mae.pth"
    torch.save(tiny_vit_state(extra="blocks.0.attn.gate"), path)
    return with_weights(path), [str(path), "unexpected 1 keys (e.g. blocks.0.attn.gate)", "use the backbone that matches"]


@case
def checkpoint_truncated(tmp, toy):
    import torch

    path = tmp / "mae.pth"
    torch.save(tiny_vit_state(), path)
    path.write_bytes(path.read_bytes()[:5000])
    return with_weights(path), [str(path), "truncated or not a checkpoint"]


@case
def checkpoint_not_a_state_dict(tmp, toy):
    import torch

    path = tmp / "mae.pth"
    torch.save(torch.zeros(3), path)
    return with_weights(path), [str(path), "save model.state_dict()"]


class Payload:
    """Unpickling this runs ``touch <marker>``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def code_checkpoint(tmp: Path) -> tuple[Path, Path]:
    import torch

    path, marker = tmp / "mae.pth", tmp / "code-ran"
    torch.save({"model": tiny_vit_state()["model"], "extra": Payload(marker)}, path)
    return path, marker


@case
def checkpoint_with_pickled_code(tmp, toy):
    path, _ = code_checkpoint(tmp)
    return with_weights(path), [str(path), "refused by torch.load(weights_only=True)", "re-save it as a plain state dict"]


# --- results folder -------------------------------------------------------------------------------

@case
def results_folder_not_writable(tmp, toy):
    blocker = tmp / "blocker"
    blocker.write_text("a file where the results folder should go\n")
    # checked before any work: the clips are never decoded
    return ["--tasks", "tradeoff", "--data-root", str(two_clips(toy, tmp)), "--results", str(blocker / "res")], \
        [str(blocker / "res"), "choose a writable --results folder"]


@case
def results_disk_full(tmp, toy):
    # the result is computed, then its write fails as on a full disk (os.fsync is patched by the test)
    return ["--tasks", "tradeoff", "--data-root", str(two_clips(toy, tmp)), *TINY_TRADEOFF], \
        ["seed0.json", "No space left on device", "free disk space"]


# --- the examples that were tracebacks or silently accepted (issue 15) ----------------------

@case
def set_a_group_to_a_scalar(tmp, toy):  # was AttributeError inside the propagation engine
    _, args = davis(toy, tmp)
    return [*args, "--set", "davis.propagation=5"], ["propagation is a group of keys", "topk", "set one of them, e.g. propagation."]


@case
def set_for_a_task_not_in_the_run(tmp, toy):  # was silently ignored
    return ["--tasks", "tradeoff", "--set", "davis.topk=5"], ["'davis.topk=5' changes nothing", "davis is not part of this run"]


@case
def set_value_not_yaml(tmp, toy):  # was yaml.ScannerError
    return ["--tasks", "tradeoff", "--set", "tradeoff.crop=[64"], ["'tradeoff.crop=[64'", "is not valid YAML"]


@case
def set_key_with_empty_part(tmp, toy):
    return ["--tasks", "tradeoff", "--set", "tradeoff..crop=64"], ["'tradeoff..crop=64'", "must look like SECTION.KEY=VALUE"]


@case
def tasks_named_twice(tmp, toy):  # was: DAVIS evaluated twice
    return ["--tasks", "davis,davis"], ["'davis,davis'", "names davis more than once", "list each once"]


@case
def tasks_empty_with_a_suite(tmp, toy):  # was: every task of the suite
    return ["--suite", "toy", "--tasks", ""], ["--tasks ''", "has an empty item"]


@case
def seeds_repeated(tmp, toy):
    return ["--tasks", "tradeoff", "--seeds", "0,1,0"], ["'0,1,0'", "names 0 more than once"]


@case
def seed_negative(tmp, toy):
    return ["--tasks", "tradeoff", "--seeds=-1"], ["--seeds '-1'", "outside 0..4294967295"]


@case
def plugin_with_syntax_error(tmp, toy):  # was SyntaxError
    plugin = tmp / "mine.py"
    plugin.write_text("def broken(:\n")
    return ["--tasks", "tradeoff", "--plugin", str(plugin)], [str(plugin), "line 1", "fix its syntax"]


@case
def plugin_that_exits_on_import(tmp, toy):  # was exit code 3 and nothing on stderr
    plugin = tmp / "mine.py"
    plugin.write_text("import sys\n\nsys.exit(3)\n")
    return ["--tasks", "tradeoff", "--plugin", str(plugin)], [str(plugin), "line 3", "sys.exit(3)", "__main__"]


@case
def plugin_not_python(tmp, toy):
    plugin = tmp / "mine.txt"
    plugin.write_text("X = 1\n")
    return ["--tasks", "tradeoff", "--plugin", str(plugin)], [str(plugin), "is not a .py file"]


@case
def config_file_is_a_folder(tmp, toy):
    return ["--tasks", "tradeoff", "--config", str(tmp)], [str(tmp), "is a folder, not a file"]


@case
def weights_not_a_checkpoint_file(tmp, toy):
    notes = tmp / "notes.txt"
    notes.write_text("weights are elsewhere\n")
    return with_weights(notes), [str(notes), "is not a .pth/.pt/.tar/.bin/.ckpt/.safetensors file"]


@case
def tag_on_two_lines(tmp, toy):
    return ["--tasks", "tradeoff", "--tag", "short\nschedule"], ["'short\\nschedule'", "1-64 printable characters"]


@case
def device_unknown(tmp, toy):
    return ["--tasks", "tradeoff", "--device", "gpu"], ["'gpu'", "auto, cpu, mps, cuda or cuda:N"]


@case
def progress_both_ways(tmp, toy):
    return ["--tasks", "tradeoff", "--progress"], ["--progress: not allowed with argument --no-progress"]


@case
def slurm_not_installed(tmp, toy):  # was "Could not detect srun" after planning (the test empties PATH)
    return ["--tasks", "tradeoff", "--executor", "slurm"], ["--executor slurm needs sbatch and srun on PATH"]


@case
def data_root_is_a_file(tmp, toy):
    (tmp / "data.txt").write_text("a file\n")
    return ["--tasks", "tradeoff", "--data-root", str(tmp / "data.txt")], [str(tmp / "data.txt"), "is a file, not a folder"]


@case
def weights_is_a_folder(tmp, toy):
    return with_weights(tmp), [str(tmp), "is a folder, not a file"]


@case
def abbreviated_option(tmp, toy):
    return ["--tasks", "tradeoff", "--forc"], ["unrecognized arguments: --forc"]


# --- task values outside their typed range (issue 11: were a late traceback or a written result) ----

def tradeoff_set(tmp: Path, toy: Path, item: str) -> list[str]:
    """``bench run`` of tradeoff on two toy clips with ``--set item``: a result would be written if it were accepted."""
    return ["--tasks", "tradeoff", "--data-root", str(two_clips(toy, tmp)), *TINY_TRADEOFF, "--set", item]


@case
def tradeoff_zero_frames(tmp, toy):  # was "torch.cat(): expected a non-empty list" at evaluation
    return tradeoff_set(tmp, toy, "tradeoff.num_frames=0"), \
        ["task tradeoff: num_frames=0 is refused", "greater than or equal to 1"]


@case
def tradeoff_negative_gamma(tmp, toy):  # was accepted: a margin that rewards inconsistency, written
    return tradeoff_set(tmp, toy, "tradeoff.gamma=-5"), ["task tradeoff: gamma=-5.0 is refused", "greater than or equal to 0"]


@case
def retrieval_zero_clips(tmp, toy):  # was a ValueError while sampling clips
    return ["--tasks", "ucf101_retrieval", "--data-root", str(toy), "--set", "ucf101_retrieval.num_clips=0"], \
        ["task ucf101_retrieval: num_clips=0 is refused", "greater than or equal to 1"]


@case
def knn_negative_temperature(tmp, toy):  # was accepted: exp(sim / -1) ranks the farthest videos first, written
    return ["--tasks", "ucf101_cls", "--data-root", str(toy), "--set", "ucf101_cls.knn_temperature=-1"], \
        ["task ucf101_cls: knn_temperature=-1.0 is refused", "greater than 0"]
