"""Property tests of the one-line promise: hostile values for every option of every subcommand.

For each option, Hypothesis draws values that must be refused (out of range, wrong type, missing or
wrong kind of file, repeated or empty list items, malformed ``--set``...) and puts one into an
otherwise valid command line. Each must end with exit code 2, exactly one line on stderr that names
the option or value, nothing on stdout, and no file written. ``CATALOGUE`` must hold every option the
parser has (a test walks the parser), so a new option without hostile values fails here. Valid values
of the typed options are checked to parse to what they say. The CLI runs in-process for speed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark import cliargs
from benchmark.cli import build_parser, main

EXAMPLES = settings(max_examples=6, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --- the sandbox every command line points into ----------------------------------------------------


@pytest.fixture(scope="module")
def box(tmp_path_factory) -> Path:
    """``data/`` (an empty data root), ``res/`` (empty results), ``preds/``, a plain file, a YAML and a plugin."""
    root = tmp_path_factory.mktemp("box")
    for folder in ("data", "res", "preds"):
        (root / folder).mkdir()
    (root / "file.txt").write_text("not a folder\n")
    (root / "cfg.yaml").write_text("tradeoff: {crop: 64}\n")
    (root / "plugin.py").write_text("X = 1\n")
    return root


def base(box: Path) -> dict[str, list[str]]:
    """A valid command line per subcommand that reads only the sandbox and can write nothing."""
    res, data = str(box / "res"), str(box / "data")
    return {
        "bench": ["list", "methods"],
        "bench run": ["run", "--method", "frozen", "--backbone", "efficientnet_lite0", "--tasks", "tradeoff",
                      "--results", res, "--data-root", data, "--no-progress"],
        "bench sweep": ["sweep", "--methods", "frozen", "--backbones", "efficientnet_lite0", "--tasks", "tradeoff",
                        "--results", res, "--data-root", data, "--dry-run"],
        "bench reproduce": ["reproduce", "cosettle", "--results", res, "--dry-run"],
        "bench report": ["report", "--results", res, "--out", str(box / "page.html")],
        "bench list": ["list", "results", "--results", res],
        "bench table": ["table", "--results", res],
        "bench compare": ["compare", "frozen", "cosettle", "--task", "davis", "--results", res],
        "bench doctor": ["doctor", "--results", res],
        "bench cache": ["cache", "ls", "--dir", str(box / "res" / "cache")],
        "bench weights": ["weights", "list"],
        "bench data": ["data", "toy", "--out", str(box / "toy")],
        "bench data toy": ["data", "toy", "--out", str(box / "toy")],
        "bench score": ["score", "davis", "--data-root", data, "--predictions", str(box / "preds")],
    }


# --- hostile values, by kind ------------------------------------------------------------------------

def not_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


def ints_outside(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.one_of(st.integers(max_value=lo - 1).map(str), st.integers(min_value=hi + 1).map(str),
                     st.text(max_size=12).filter(not_int), st.sampled_from(["1.5", "1e3", "nan", "0x10", ""]))


NAME = st.from_regex(r"[a-z][a-z0-9_]{0,9}", fullmatch=True)
BAD_LIST = st.one_of(
    st.just(""), st.just(","), NAME.map(lambda n: f"{n},{n}"), NAME.map(lambda n: f"{n},"), NAME.map(lambda n: f",{n}"),
    st.text(min_size=1, max_size=20).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9_.,\- ]*", s)),
)
UNKNOWN_NAMES = st.from_regex(r"zz[a-z]{3,8}", fullmatch=True)  # well formed, never registered
BAD_TEXT = st.one_of(st.just(""), st.just(" "), st.text(min_size=1, max_size=10).map(lambda s: f"a\n{s}"),
                     st.text(min_size=201, max_size=230, alphabet=string.ascii_letters))
FLAG_VALUE = st.sampled_from(["yes", "1", "true", ""])


def missing_path(box: Path) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), st.just("a\0b"), NAME.map(lambda n: str(box / "nope" / n)))


def not_a_dir(box: Path) -> st.SearchStrategy[str]:
    return st.one_of(missing_path(box), st.just(str(box / "file.txt")))


def not_a_file(box: Path, good_suffix: str) -> st.SearchStrategy[str]:
    return st.one_of(missing_path(box), st.just(str(box / "data")), st.just(str(box / "file.txt")),
                     NAME.map(lambda n: str(box / "nope" / f"{n}{good_suffix}")))


def not_writable(box: Path) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), st.just("a\0b"), NAME.map(lambda n: str(box / "file.txt" / n)))


def not_a_choice(choices: list[str]) -> st.SearchStrategy[str]:
    return st.text(max_size=12).filter(lambda s: s not in [*choices, "-h", "--help", "--version"])


BAD_SET = st.one_of(
    st.text(max_size=15).filter(lambda s: "=" not in s),
    st.from_regex(r"[a-z]{1,8}=[0-9]", fullmatch=True),                       # no KEY
    st.sampled_from(["tradeoff.=1", ".crop=1", "tradeoff..crop=1", "tradeoff.crop=[", "tradeoff.crop={a",
                     "tradeoff.crop=: :", "tradeoff.crop=many", "tradeoff.num_frames=0.5", "tradof.crop=1",
                     "tradeoff.gama=1"]),
    NAME.map(lambda n: f"tradeoff.zz{n}=1"),                                  # unknown key
)


def catalogue(box: Path) -> dict[tuple[str, str], st.SearchStrategy[str]]:
    """``(command, option)`` → values that must be refused there with one line and exit code 2."""
    run_like = {
        "--tasks": st.one_of(BAD_LIST, UNKNOWN_NAMES), "--suite": st.one_of(BAD_LIST, UNKNOWN_NAMES),
        "--data-root": not_a_dir(box), "--data": st.one_of(st.text(max_size=10).filter(lambda s: "=" not in s),
                                                           st.just("davis="), st.just(f"={box}"),
                                                           NAME.map(lambda n: f"zz{n}={box / 'data'}"),
                                                           st.just(f"davis={box / 'nope'}")),
        "--train-data": not_a_dir(box), "--results": not_writable(box),
        "--seeds": st.one_of(BAD_LIST, ints_outside(0, cliargs.SEED_MAX), st.integers(0, 99).map(lambda s: f"{s},{s}")),
        "--weights": not_a_file(box, ".pth"), "--config": st.one_of(not_a_file(box, ".yaml"), st.just(str(box / "plugin.py"))),
        "--set": BAD_SET, "--plugin": not_a_file(box, ".py"), "--device": not_a_choice(["auto", "cpu", "mps", "cuda"]).filter(
            lambda s: not cliargs.DEVICE.fullmatch(s)),
        "--tag": st.one_of(st.just(""), st.just(" "), st.text(max_size=8).map(lambda s: f"a\n{s}"), st.just("x" * 65)),
        "--offline": FLAG_VALUE, "--force": FLAG_VALUE, "--progress": FLAG_VALUE, "--no-progress": FLAG_VALUE,
        "--no-cache": FLAG_VALUE, "--debug": FLAG_VALUE,
    }
    submit = {"--executor": not_a_choice(list(cliargs.EXECUTORS)), "--max-parallel": ints_outside(1, 100_000),
              "--executor-config": not_a_file(box, ".yaml"), "--dry-run": FLAG_VALUE}
    names = st.one_of(BAD_LIST, UNKNOWN_NAMES)
    out: dict[tuple[str, str], st.SearchStrategy[str]] = {("bench", "--debug"): FLAG_VALUE, ("bench", "COMMAND"): not_a_choice(
        ["run", "sweep", "report", "list", "table", "reproduce", "compare", "doctor", "cache", "weights", "data", "score"])}
    out |= {("bench run", k): v for k, v in run_like.items()}
    out |= {("bench run", "--method"): names, ("bench run", "--backbone"): names,
            ("bench run", "--executor"): not_a_choice(list(cliargs.EXECUTORS))}
    out |= {("bench sweep", k): v for k, v in {**run_like, **submit, "--methods": names, "--backbones": names,
                                                "--status": FLAG_VALUE}.items()}
    # `reproduce --dry-run` reads the published table only, so its run flags meet the parse-time checks alone
    parse_only = {**run_like, "--tasks": BAD_LIST, "--suite": BAD_LIST, "--set": BAD_SET.filter(lambda s: not re.fullmatch(
        r"[a-z]+\.[a-z0-9_]+=[^\[{:]*", s)), "--data": st.one_of(st.just("davis="), st.just(f"={box}")),
                  "--config": not_a_file(box, ".yaml")}
    out |= {("bench reproduce", k): v for k, v in {**parse_only, **submit, "table": names, "--backbones": names}.items()}
    out |= {("bench report", "--results"): not_a_dir(box), ("bench report", "--out"): st.one_of(
        not_writable(box), st.just(str(box / "data")), NAME.map(lambda n: str(box / f"{n}.pdf")),
        NAME.map(lambda n: str(box / "nope" / f"{n}.html"))), ("bench report", "--title"): BAD_TEXT,
        ("bench report", "--debug"): FLAG_VALUE, ("bench report", "--no-holm"): FLAG_VALUE,
        ("bench report", "--plugin"): not_a_file(box, ".py")}
    out |= {("bench list", "what"): not_a_choice(["methods", "backbones", "tasks", "suites", "results"]),
            ("bench list", "--results"): st.sampled_from(["", "a\0b", str(box / "nope"), str(box / "file.txt")]),
            ("bench list", "--plugin"): not_a_file(box, ".py"), ("bench list", "--stale"): FLAG_VALUE,
            ("bench list", "--debug"): FLAG_VALUE}
    out |= {("bench table", k): v for k, v in {
        "--results": not_a_dir(box), "--format": not_a_choice(["markdown", "latex", "html", "csv"]), "--tasks": names,
        "--methods": names, "--backbones": names, "--metric": BAD_TEXT, "--digits": ints_outside(0, 10),
        "--published": st.one_of(BAD_LIST, UNKNOWN_NAMES), "--published-tol": st.one_of(
            st.floats(max_value=-1e-9).map(str), st.floats(min_value=1.0001).map(str),
            st.sampled_from(["nan", "inf", "-inf", "x", ""])), "--debug": FLAG_VALUE, "--ci": FLAG_VALUE,
        "--no-holm": FLAG_VALUE, "--reference": names}.items()}
    out |= {("bench compare", k): v for k, v in {
        "a": BAD_TEXT, "b": BAD_TEXT, "--task": names, "--results": not_a_dir(box), "--backbone": names,
        "--top": ints_outside(0, 1_000_000), "--resamples": ints_outside(1, 1_000_000), "--seed": ints_outside(0, cliargs.SEED_MAX),
        "--test": not_a_choice(["auto", "permutation", "sign", "bootstrap"]), "--ci": not_a_choice(["percentile", "bca"]),
        "--debug": FLAG_VALUE}.items()}
    out |= {("bench doctor", "--results"): st.sampled_from(["", "a\0b"]), ("bench doctor", "--debug"): FLAG_VALUE}
    out |= {("bench cache", k): v for k, v in {
        "action": not_a_choice(["ls", "du", "clear", "prune"]), "--results": st.sampled_from(["", "a\0b"]),
        "--max-size": st.one_of(st.sampled_from(["", "G", "-1G", "20Q", "1..5G"]), st.text(alphabet="xyz!%", max_size=5)),
        "--dir": st.sampled_from(["", "a\0b"]), "--backbone": BAD_LIST, "--debug": FLAG_VALUE}.items()}
    out |= {("bench weights", k): v for k, v in {
        "action": not_a_choice(["list", "fetch", "verify"]), "BACKBONE": st.one_of(BAD_LIST, UNKNOWN_NAMES),
        "--plugin": not_a_file(box, ".py"), "--debug": FLAG_VALUE}.items()}
    out |= {("bench data", "KIND"): not_a_choice(["toy"]), ("bench data", "--debug"): FLAG_VALUE}
    out |= {("bench data toy", k): v for k, v in {
        "--out": not_writable(box), "--seed": ints_outside(0, cliargs.SEED_MAX), "--size": not_a_choice(["small", "medium"]),
        "--debug": FLAG_VALUE}.items()}
    out |= {("bench score", k): v for k, v in {
        "TASK": st.one_of(names, st.just("tradeoff")), "--data-root": not_a_dir(box), "--predictions": not_a_dir(box),
        "--out": not_writable(box), "--json": FLAG_VALUE, "--plugin": not_a_file(box, ".py"), "--debug": FLAG_VALUE}.items()}
    return out


def options(parser: argparse.ArgumentParser, prefix: str = "bench"):
    """``(command, option name, action)`` for every action of ``parser`` and its subcommands but help/version."""
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if isinstance(action, argparse._SubParsersAction):
            yield prefix, action.metavar, action
            for name, sub in action.choices.items():
                yield from options(sub, f"{prefix} {name}")
        else:
            yield prefix, (action.option_strings[-1] if action.option_strings else action.metavar or action.dest), action


def with_value(argv: list[str], option: str, value: str, action: argparse.Action) -> list[str]:
    """``argv`` with ``option`` set to ``value`` (replacing its current value, or a positional in place)."""
    if action.option_strings:
        out = list(argv)
        if option in out:
            i = out.index(option)
            del out[i:i + (1 if action.nargs == 0 else 2)]
        return [*out, f"{option}={value}"]
    positionals = {"COMMAND": 0, "what": 1, "action": 1, "table": 1, "a": 1, "b": 2, "TASK": 1, "KIND": 1, "BACKBONE": 2}
    i = positionals[option]
    return [*argv[:i], value, *argv[i + (0 if option == "BACKBONE" else 1):]]  # BACKBONE: none in the base


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


ALL = [(cmd, opt) for cmd, opt, _ in options(build_parser())]


def test_the_catalogue_covers_every_option_of_every_subcommand(box):
    assert len(ALL) >= 90
    assert sorted(set(ALL) - set(catalogue(box))) == []
    assert sorted(set(catalogue(box)) - set(ALL)) == []  # no stale entry either


@pytest.mark.parametrize("command,option", ALL, ids=[f"{c[6:] or 'bench'}:{o}" for c, o in ALL])
def test_hostile_values_are_one_line_exit_2_and_write_nothing(box, command, option):
    actions = {(c, o): a for c, o, a in options(build_parser())}
    argv, action = base(box)[command], actions[command, option]
    before = files(box)

    @EXAMPLES
    @given(value=catalogue(box)[command, option])
    def check(value: str) -> None:
        code, out, err = run_cli(with_value(argv, option, value, action))
        lines = err.splitlines()
        assert code == 2, (value, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (value, err)
        assert "Traceback" not in err and out == "", (value, out)
        assert files(box) == before, (value, files(box) - before)

    check()


# --- valid values parse to what they say ----------------------------------------------------------

@EXAMPLES
@given(seeds=st.lists(st.integers(0, cliargs.SEED_MAX), min_size=1, max_size=5, unique=True),
       parallel=st.integers(1, 100_000), digits=st.integers(0, 10),
       tasks=st.lists(NAME, min_size=1, max_size=4, unique=True))
def test_valid_values_parse_to_their_typed_value(seeds, parallel, digits, tasks):
    args = build_parser().parse_args(["sweep", "--methods", "frozen", "--backbones", "mae", "--seeds", ",".join(map(str, seeds)),
                                      "--max-parallel", f" {parallel}", "--tasks", ", ".join(tasks), "--dry-run"])
    assert (args.seeds, args.max_parallel, args.tasks) == (seeds, parallel, tasks)
    assert build_parser().parse_args(["table", "--digits", str(digits)]).digits == digits
