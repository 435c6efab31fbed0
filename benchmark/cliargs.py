"""The typed validators behind every ``bench`` option, and the parser that reports them in one line.

Each option of each subcommand names one of these callables as its argparse ``type=``, so a value is
checked (type, range, existence, file kind) once, while the command line is read, before anything is
planned or written. A refusal is an :class:`argparse.ArgumentTypeError` whose text says what was
expected; :class:`Parser` turns it, and every other argparse complaint, into one
:class:`~benchmark.errors.UserError` line (argparse's own habit is a multi-line usage block and
``sys.exit``, which breaks the one-line promise and the in-process use of ``main``).

Names (methods, backbones, tasks) are checked for form and repetition here, not for existence: a
``--plugin`` file read later may register them, so the registries' "did you mean" check stays at resolve time.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from benchmark.errors import UserError

SEED_MAX = 2**32 - 1  # numpy's and torch's seeds are unsigned 32-bit
EXECUTORS = ("inline", "debug", "local", "slurm")
WEIGHT_SUFFIXES = (".pth", ".pt", ".tar", ".bin", ".ckpt", ".safetensors")  # the released files' (".pth.tar" ends in .tar)
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,2})?")
Type = Callable[[str], object]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose complaints are one :class:`UserError` line instead of usage text and ``exit(2)``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `--deb` is refused, not silently read as `--debug`
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^argument (\S+): (?=\1\b)", "", message)  # "argument --seeds: --seeds '0,x' ..." said once
        raise UserError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _int(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None


def int_range(lo: int, hi: int, what: str) -> Type:
    """An integer in ``[lo, hi]``: ``--max-parallel 0`` or ``-1`` is refused, not read as "no bound"."""
    def parse(text: str) -> int:
        value = _int(text, what)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be between {lo} and {hi}, got {value}")
        return value
    parse.__name__ = what
    return parse


def float_range(lo: float, hi: float, what: str) -> Type:
    """A finite float in ``[lo, hi]`` (``nan`` and ``inf`` refused)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and lo <= value <= hi):
            raise argparse.ArgumentTypeError(f"{what} must be a number between {lo:g} and {hi:g}, got {text!r}")
        return value
    parse.__name__ = what
    return parse


def choice(what: str, options: tuple[str, ...]) -> Type:
    """One of ``options``, refused as "unknown <what>" (the wording the library's own check uses)."""
    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}: choose one of {', '.join(options)}")
        return text
    parse.__name__ = what
    return parse


def _items(text: str, what: str, example: str) -> list[str]:
    """A comma list with no empty and no repeated item: ``--tasks ""`` would otherwise mean "every suite
    task" and ``--tasks davis,davis`` would evaluate DAVIS twice."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise argparse.ArgumentTypeError(f"{what} {text!r} has an empty item: pass comma-separated values, e.g. {example}")
    twice = sorted({t for t in items if items.count(t) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{what} {text!r} names {', '.join(twice)} more than once: list each once")
    return items


def names(what: str, example: str) -> Type:
    """A comma list of registry names (letters, digits, ``_ . -``; existence is checked at resolve time)."""
    def parse(text: str) -> list[str]:
        items = _items(text, what, example)
        bad = [t for t in items if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", t)]
        if bad:
            raise argparse.ArgumentTypeError(f"{what} {bad[0]!r} is not a name: use letters, digits, '_', '.', '-' "
                                             f"(see `bench list`), e.g. {example}")
        return items
    parse.__name__ = what
    return parse


def name(what: str) -> Type:
    """One registry name (``--method``, ``--backbone``, ``--task``)."""
    one = names(what, f"{what} NAME")

    def parse(text: str) -> str:
        items = one(text)
        if len(items) != 1:
            raise argparse.ArgumentTypeError(f"{what} takes one name, got {text!r}")
        return items[0]
    parse.__name__ = what
    return parse


def seeds(text: str) -> list[int]:
    """``--seeds 0,1,2``: distinct integers in ``[0, 2**32-1]``."""
    items = _items(text, "--seeds", "--seeds 0,1,2")
    out = []
    for item in items:
        try:
            value = int(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--seeds {text!r} must be comma-separated integers, e.g. --seeds 0,1,2") from None
        if not 0 <= value <= SEED_MAX:
            raise argparse.ArgumentTypeError(f"--seeds {text!r}: seed {value} is outside 0..{SEED_MAX}")
        out.append(value)
    if len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"--seeds {text!r} repeats a seed: list each once")
    return out


def _path(text: str, what: str) -> Path:
    if not text.strip() or "\0" in text:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not a path: pass a file or folder name")
    return Path(text).expanduser()


def path(what: str) -> Type:
    """A path that may not exist yet (checked by the command that reads or creates it)."""
    def parse(text: str) -> Path:
        return _path(text, what)
    parse.__name__ = what
    return parse


def existing_dir(what: str, hint: str) -> Type:
    """A folder that exists (``hint`` says what it should hold)."""
    def parse(text: str) -> Path:
        p = _path(text, what)
        if not p.is_dir():
            state = "is a file, not a folder" if p.exists() else "does not exist"
            raise argparse.ArgumentTypeError(f"{what} {p} {state}: pass {hint}")
        return p
    parse.__name__ = what
    return parse


def existing_file(what: str, hint: str, suffixes: tuple[str, ...] = ()) -> Type:
    """A regular, readable file, optionally with one of ``suffixes`` (checked by opening it)."""
    def parse(text: str) -> Path:
        p = _path(text, what)
        if not p.is_file():
            state = "is a folder, not a file" if p.is_dir() else "does not exist"
            raise argparse.ArgumentTypeError(f"{what} {p} {state}: pass {hint}")
        if suffixes and p.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{what} {p} is not a {'/'.join(suffixes)} file: pass {hint}")
        try:
            with open(p, "rb") as f:
                f.read(1)
        except OSError as e:
            raise argparse.ArgumentTypeError(f"{what} {p} cannot be read ({e.strerror}): fix its permissions") from None
        return p
    parse.__name__ = what
    return parse


def writable_dir(what: str) -> Type:
    """A folder that exists and is writable, or can be created (nothing is created while parsing)."""
    def parse(text: str) -> Path:
        from benchmark.results import writable_problem

        p = _path(text, what)
        problem = writable_problem(p)
        if problem:
            raise argparse.ArgumentTypeError(f"cannot write under {what} {p} ({problem}): choose a writable {what} folder")
        return p
    parse.__name__ = what
    return parse


def new_file(what: str, suffixes: tuple[str, ...]) -> Type:
    """A file to write: not a folder, with one of ``suffixes``, in a folder that exists."""
    def parse(text: str) -> Path:
        p = _path(text, what)
        if p.is_dir():
            raise argparse.ArgumentTypeError(f"{what} {p} is a folder: pass a file name, e.g. {p / ('report' + suffixes[0])}")
        if p.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{what} {p} must end in {' or '.join(suffixes)}")
        if not p.parent.is_dir():
            raise argparse.ArgumentTypeError(f"{what} {p}: folder {p.parent} does not exist: create it first")
        if not os.access(p.parent, os.W_OK):
            raise argparse.ArgumentTypeError(f"{what} {p}: folder {p.parent} is not writable: choose another place")
        return p
    parse.__name__ = what
    return parse


plugin_file = existing_file("--plugin", "the path of a .py file that registers a method", (".py",))


def text(what: str) -> Type:
    """Free text on one line (a title, a metric name, ``METHOD@VARIANT``)."""
    def parse(value: str) -> str:
        if not value.strip() or len(value) > 200 or any(ch in value for ch in "\n\r\0"):
            raise argparse.ArgumentTypeError(f"{what} {value!r} must be 1-200 characters on one line")
        return value
    parse.__name__ = what
    return parse


def set_item(text: str) -> str:
    """``--set SECTION.KEY=VALUE``: checked here (form and YAML value), merged later by ``config.parse_sets``."""
    from benchmark.config import parse_sets

    try:
        parse_sets([text])
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def size(text: str) -> str:
    """``--max-size 20G``: checked by the cache's own parser, passed on as written."""
    from benchmark.cache_admin import parse_size

    try:
        parse_size(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def data_item(text: str) -> str:
    """``--data DATASET=DIR``: the form here; the data set's name and folder in the CLI's ``_datasets``."""
    name_, eq, folder = text.partition("=")
    if not eq or not name_.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"--data {text!r} must look like DATASET=DIR, e.g. --data davis=/data/DAVIS")
    return text


def tag(text: str) -> str:
    """``--tag``: a variant's name on one line; it names a folder through ``identity.safe_name``, which turns
    other characters (``/``, spaces) into ``_``, so ``../x`` cannot leave the results folder."""
    if not text.strip() or len(text) > 64 or not text.isprintable():
        raise argparse.ArgumentTypeError(f"--tag {text!r} must be 1-64 printable characters, e.g. --tag short_schedule")
    return text


def device(text: str) -> str:
    if not DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"--device {text!r} must be auto, cpu, mps, cuda or cuda:N")
    return text


def executor(text: str) -> str:
    """``--executor``; ``slurm`` only where Slurm's client is installed (submitit would fail after planning
    with "Could not detect srun")."""
    if text not in EXECUTORS:
        raise argparse.ArgumentTypeError(f"--executor {text!r} is not one of {', '.join(EXECUTORS)}")
    if text == "slurm":
        missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
        if missing:
            raise argparse.ArgumentTypeError(f"--executor slurm needs {' and '.join(missing)} on PATH (not found): "
                                             "run on a Slurm login node, or use --executor local")
    return text


def bug_line(e: BaseException) -> str:
    """An unexpected exception in one line: its type and the first line of its message."""
    first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "no message")
    return f"{type(e).__name__}: {first[:300]}"
