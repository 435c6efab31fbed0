"""``bench``: the command line of i2v-bench.

Start-up stays light: only argparse, YAML and the lazy registries are imported until a subcommand
needs torch, so ``bench --help`` and ``bench list`` answer at once. Every option is typed and checked
by :mod:`benchmark.cliargs` while the command line is read; every user mistake surfaces as one line
on stderr and exit code 2 (:class:`benchmark.errors.UserError`); anything else is a bug, shown as one
line and exit code 1 unless ``--debug`` asks for the traceback. The commands that plan and run jobs
live here; those that read results or manage local state are in :mod:`benchmark.commands`.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from benchmark import __version__, commands
from benchmark import cliargs as ca
from benchmark.data import cache_root
from benchmark.errors import EXIT_USER_ERROR, UserError

EXIT_BUG = 1


def _overrides(args: argparse.Namespace, suite: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from benchmark.config import load_overrides, parse_sets

    merged: dict[str, dict[str, Any]] = {}
    layers = [suite.get("overrides", {})]
    if args.config:
        layers.append(load_overrides(Path(args.config)))
    layers.append(parse_sets(args.set))
    for layer in layers:
        for section, values in (layer or {}).items():
            if values:
                merged.setdefault(section, {}).update(values)
    return merged


def _datasets(items: list[str]) -> dict[str, str]:
    """``--data DATASET=DIR`` items (form checked by :func:`cliargs.data_item`), each a known data set
    (configs/datasets.yaml) named once, and an existing folder."""
    from benchmark.config import datasets, suggest

    out = {}
    for item in items:
        name, _, folder = item.partition("=")
        if name not in datasets():
            raise UserError(f"--data names unknown data set {name!r}: {suggest(name, list(datasets()))}"
                            f"known: {', '.join(datasets())}")
        if name in out:
            raise UserError(f"--data names {name} twice ({out[name]} and {folder}): keep one")
        if not Path(folder).is_dir():
            raise UserError(f"--data {name}={folder}: folder {folder} does not exist; pass the data set's folder")
        out[name] = folder
    return out


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars on a terminal, or where ``--progress`` asks; never in a log file or a pipe."""
    return args.progress or (not args.no_progress and sys.stderr.isatty())


def _spec_fields(args: argparse.Namespace) -> tuple[dict[str, Any], list[int]]:
    """What `run` and `sweep` share: plugins loaded, suite, tasks, data, overrides → RunSpec fields, and the seeds."""
    from benchmark.config import dataset_folder_name, suggest, suites
    from benchmark.registry import load_plugin

    if args.offline:
        from benchmark.backbones.weights import go_offline

        go_offline()
    for plugin in args.plugin:
        load_plugin(plugin)
    suite: dict[str, Any] = {}
    if args.suite:
        all_suites = suites()
        if args.suite not in all_suites:
            raise UserError(f"unknown suite {args.suite!r}: {suggest(args.suite, list(all_suites))}"
                            f"available: {', '.join(all_suites)}")
        suite = all_suites[args.suite]
    tasks = list(args.tasks or suite.get("tasks", []))
    if not tasks:
        raise UserError("no tasks to run: pass --tasks a,b or --suite NAME (see `bench list tasks`)")
    data_root = Path(args.data_root) if args.data_root else None
    if data_root is None and suite.get("data") == "toy":
        from benchmark.data.toy import generate

        data_root = generate(cache_root() / "toy" / f"{suite.get('toy_size', 'small')}-seed0", 0, suite.get("toy_size", "small"))
    train_data = Path(args.train_data) if args.train_data else None
    if train_data is None and data_root is not None and suite.get("train_data"):
        candidate = data_root / dataset_folder_name(suite["train_data"])
        train_data = candidate if candidate.is_dir() else None
    seeds = list(args.seeds or [0])
    overrides = _overrides(args, suite)
    datasets = _datasets(args.data)
    fields = dict(
        tasks=tasks, results=Path(args.results), data_root=data_root, train_data=train_data, datasets=datasets,
        weights=str(args.weights) if args.weights else None, overrides=overrides, suite=args.suite, tag=args.tag,
        suite_overrides={k: v for k, v in (suite.get("overrides") or {}).items() if v},
        plugins=[str(Path(p).resolve()) for p in args.plugin],
        force=args.force, device=args.device, progress=_progress(args), cache=not args.no_cache,
    )
    return fields, seeds


def _check_sets(args: argparse.Namespace, fields: dict[str, Any], methods: list[str], backbones: list[str]) -> None:
    """Refuse a ``--set`` whose section is a registered name this run does not use: it would change nothing
    (``--tasks tradeoff --set davis.topk=5``). Unregistered sections get the runner's "did you mean"."""
    from benchmark.registry import BACKBONES, METHODS, TASKS

    used = {*fields["tasks"], *methods, *backbones}
    for item in args.set:
        section = item.partition(".")[0]
        if section not in used and any(section in reg.names() for reg in (METHODS, BACKBONES, TASKS)):
            raise UserError(f"--set {item!r} changes nothing: {section} is not part of this run (tasks "
                            f"{', '.join(fields['tasks'])}; {', '.join(methods)} on {', '.join(backbones)}): "
                            f"add it to the run or drop the --set")


def _print_overrides(fields: dict[str, Any], methods: list[str], backbones: list[str]) -> None:
    """One line at run start naming the suite's overrides this run applies, once names resolved: they are
    the values a user did not type (``--set``/``--config`` values are on the command line already)."""
    used = {*fields["tasks"], *methods, *backbones}
    final = fields["overrides"]  # a suite value that --config/--set replaced is not applied
    applied = [f"{s}.{k}={v}" for s, values in fields["suite_overrides"].items() if s in used
               for k, v in values.items() if final.get(s, {}).get(k) == v]
    if applied:
        print(f"suite {fields['suite']} overrides applied: {', '.join(applied)}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.runner import BenchJob, RunSpec, pending_tasks, resolve

    fields, seeds = _spec_fields(args)
    specs = [RunSpec(method=args.method, backbone=args.backbone, seed=seed, **fields) for seed in seeds]
    if args.executor != "inline":  # one submission path for every submitit executor: the sweep's
        return _submit(args, fields, specs, [args.method], [args.backbone])
    from benchmark.staleness import task_states

    from benchmark.preflight import check

    todo = []
    resolved_all = [resolve(spec) for spec in specs]  # a bad name fails here, before anything is printed
    _check_sets(args, fields, [args.method], [args.backbone])
    check(specs, resolved_all)  # weights, data, training data of every job: all problems, then stop
    _print_overrides(fields, [args.method], [args.backbone])
    for spec, resolved in zip(specs, resolved_all):
        pending = pending_tasks(spec, resolved)
        for line in task_states(spec, resolved, pending):
            print(line, file=sys.stderr)
        if pending:
            todo.append(spec)
    if not todo:
        print("all results already present: nothing to do (pass --force to recompute)", file=sys.stderr)
    for spec in todo:
        for outcome in BenchJob(spec)():
            if outcome.status == "error":
                raise UserError(outcome.message)
    from benchmark import distributed
    from benchmark.table import render

    if distributed.is_main():  # under torchrun every rank runs this command; one table is enough
        print(render(Path(args.results), "markdown", fields["tasks"], methods=[args.method], backbones=[args.backbone]))
    return 0


def _submit(args: argparse.Namespace, fields: dict[str, Any], specs: list, methods: list[str], backbones: list[str]) -> int:
    """Plan, submit through submitit, wait, print the table; failed jobs are recorded and retried on rerun."""
    from benchmark import sweep
    from benchmark.preflight import check
    from benchmark.table import render

    _check_sets(args, fields, methods, backbones)
    executor_config = getattr(args, "executor_config", None)
    check(specs, executor=args.executor, executor_config=Path(executor_config) if executor_config else None)
    planned = sweep.plan(specs)
    _print_overrides(fields, methods, backbones)
    print(sweep.describe(planned), file=sys.stdout if getattr(args, "dry_run", False) else sys.stderr)
    if getattr(args, "dry_run", False):
        return 0
    cfg = sweep.executor_config(args.executor, Path(args.executor_config) if getattr(args, "executor_config", None) else None)
    with contextlib.redirect_stdout(sys.stderr):  # what submitit or a job prints is log, never part of the table
        report = sweep.run(planned, args.executor, Path(args.results) / "jobs", cfg, getattr(args, "max_parallel", None),
                           progress=fields["progress"])
    print(f"sweep: {report.jobs} jobs submitted, {report.written} results written, {len(report.failures)} failed (job or task)"
          + (" (rerun the same command to retry them)" if report.failures else ""), file=sys.stderr)
    try:
        print(render(Path(args.results), "markdown", fields["tasks"], methods=methods, backbones=backbones))
    except UserError as e:
        print(f"no table: {e}", file=sys.stderr)
    return 1 if report.failures else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from benchmark import sweep

    if args.status:
        from benchmark.sweep_status import render

        print(render(Path(args.results)))
        return 0
    methods, backbones = args.methods or [], args.backbones or []
    sweep.require_grid(methods, backbones)
    fields, seeds = _spec_fields(args)
    return _submit(args, fields, sweep.grid(fields, methods, backbones, seeds), methods, backbones)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Plan (and without --dry-run, run through the sweep's path) the runs behind a published table."""
    from benchmark import reproduce, sweep

    plan = reproduce.plan(args.table, args.backbones, args.seeds or [0], args.data_root, _datasets(args.data),
                          args.train_data, args.tasks)
    print(reproduce.describe(plan))
    if args.dry_run:
        return 0
    reproduce.as_sweep(plan, args)
    fields, seeds = _spec_fields(args)
    return _submit(args, fields, sweep.grid(fields, plan.methods, plan.backbones, seeds), plan.methods, plan.backbones)


def cmd_score(args: argparse.Namespace) -> int:
    """Plugins first: a plugin task that scores its predictions is a valid ``TASK`` like the built-ins."""
    from benchmark.runner import load_plugins
    from tasks.scoring import score

    load_plugins(args.plugin)
    out = args.out or args.predictions.with_name(f"{args.predictions.name}-scores")  # the predictions stay untouched
    return score(args.task, args.data_root, args.predictions, args.json, out)


def _add_run_arguments(r: argparse.ArgumentParser) -> None:
    """Flags shared by `run`, `sweep` and `reproduce` (read by :func:`_spec_fields`)."""
    r.add_argument("--tasks", type=ca.names("--tasks", "--tasks davis,ucf101_cls"),
                   help="comma-separated task names, each once (see `bench list tasks`)")
    r.add_argument("--suite", type=ca.name("--suite"), help="a suite from configs/suites.yaml (toy generates its own data)")
    r.add_argument("--data-root", type=ca.existing_dir("--data-root", "the folder that holds the data sets"),
                   help="folder holding the data sets (DAVIS/, UCF101/, ...) or one data set")
    r.add_argument("--data", action="append", default=[], type=ca.data_item, metavar="DATASET=DIR",
                   help="explicit folder of one data set (repeatable)")
    r.add_argument("--train-data", type=ca.existing_dir("--train-data", "the folder of unlabelled training videos"),
                   help="folder of unlabelled training videos (methods that train)")
    r.add_argument("--results", default="results", type=ca.writable_dir("--results"),
                   help="result folder, created if needed (default: results)")
    r.add_argument("--seeds", type=ca.seeds, help="comma-separated distinct seeds in 0..2^32-1 (default 0)")
    r.add_argument("--weights", type=ca.existing_file("--weights", "the backbone's weight file in its authors' format", ca.WEIGHT_SUFFIXES),
                   help="backbone weight file in its authors' format")
    r.add_argument("--config", type=ca.existing_file("--config", "a YAML, JSON or .py overrides file",
                                                     (".yaml", ".yml", ".json", ".py")),
                   help="overrides file (YAML or .py, may inherit with _base_): {section: {key: value}}, "
                        "or a variant of a default file (_base_: configs/methods/cosettle.yaml)")
    r.add_argument("--offline", action="store_true", help="never reach the network for weights (as HF_HUB_OFFLINE=1)")
    r.add_argument("--set", action="append", default=[], type=ca.set_item, metavar="SECTION.KEY=VALUE",
                   help="override one value (repeatable; VALUE is read as YAML)")
    r.add_argument("--plugin", action="append", default=[], type=ca.plugin_file,
                   help="Python file registering extra methods/tasks (repeatable)")
    r.add_argument("--device", default="auto", type=ca.device, help="auto, cpu, mps, cuda or cuda:N (default auto)")
    r.add_argument("--force", action="store_true", help="recompute results that already exist")
    r.add_argument("--tag", type=ca.tag, help="name this configuration's variant (default: derived from its diff against the defaults)")
    bars = r.add_mutually_exclusive_group()
    bars.add_argument("--progress", action="store_true", help="show progress bars even when stderr is not a terminal")
    bars.add_argument("--no-progress", action="store_true", help="no progress bars (the default when stderr is not a terminal)")
    r.add_argument("--no-cache", action="store_true", help="neither read nor write the shared frozen-feature cache")



def _add_submit_arguments(p: argparse.ArgumentParser, dry_run: str) -> None:
    """Flags of the commands that submit a grid through :func:`_submit` (`sweep`, `reproduce`)."""
    p.add_argument("--executor", default="local", type=ca.executor, choices=ca.EXECUTORS,
                   help="where jobs run: inline (this process), debug, local (subprocesses) or slurm (default local)")
    p.add_argument("--max-parallel", type=ca.int_range(1, 100_000, "--max-parallel"),
                   help="jobs at once (local) / array parallelism (slurm), at least 1")
    p.add_argument("--executor-config", type=ca.existing_file("--executor-config", "a YAML file", (".yaml", ".yml")),
                   help="YAML overriding configs/executor.yaml ({local: ..., slurm: ...})")
    p.add_argument("--dry-run", action="store_true", help=dry_run)


def build_parser() -> argparse.ArgumentParser:
    debug = ca.Parser(add_help=False)  # `--debug` is accepted before or after the subcommand
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error instead of its one line")
    p = ca.Parser(prog="bench", description="i2v-bench: image-to-video transfer benchmark", parents=[debug])
    p.add_argument("--version", action="version", version=f"%(prog)s (i2v-bench) {__version__}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do (bench COMMAND --help)")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[debug])

    r = command("run", "train (if needed) and evaluate a method on a backbone")
    r.add_argument("--method", required=True, type=ca.name("--method"), help="a method (see `bench list methods`)")
    r.add_argument("--backbone", required=True, type=ca.name("--backbone"), help="a backbone (see `bench list backbones`)")
    r.add_argument("--executor", default="inline", type=ca.executor, choices=ca.EXECUTORS,
                   help="inline (this process, default), debug, local (a subprocess) or slurm")
    _add_run_arguments(r)
    r.set_defaults(func=cmd_run)

    sw = command("sweep", "run a methods x backbones x seeds grid through submitit, skipping what is done")
    sw.add_argument("--methods", type=ca.names("--methods", "--methods frozen,cosettle"),
                    help="comma-separated method names, each once")
    sw.add_argument("--backbones", type=ca.names("--backbones", "--backbones mae,dino"),
                    help="comma-separated backbone names, each once")
    sw.add_argument("--status", action="store_true",
                    help="show the running sweep of --results: queued, running, done and failed jobs, ids and logs")
    _add_submit_arguments(sw, "print the plan and its size, submit nothing")
    _add_run_arguments(sw)
    sw.set_defaults(func=cmd_sweep)

    rp = command("reproduce", "the runs, data and weights behind a published table; run what is missing")
    rp.add_argument("table", type=ca.name("table"), help="a published table (configs/published/<table>.yaml), e.g. cosettle")
    rp.add_argument("--backbones", type=ca.names("--backbones", "--backbones mae,dino"),
                    help="comma-separated backbones (default: every one of ours the table reports)")
    _add_submit_arguments(rp, "print the runs and what is missing here; run nothing")
    _add_run_arguments(rp)
    rp.set_defaults(func=cmd_reproduce)

    commands.add_parsers(command, debug)

    s = command("score", "score a folder of predictions against a data set")
    s.add_argument("task", metavar="TASK", type=ca.name("TASK"),
                   help="a task that scores saved predictions (e.g. davis, or a --plugin task's; a wrong name lists them)")
    s.add_argument("--data-root", required=True, type=ca.existing_dir("--data-root", "the folder that holds the data set"),
                   help="folder holding the data set (or the data set itself)")
    s.add_argument("--predictions", required=True, type=ca.existing_dir("--predictions", "the folder your method wrote"),
                   help="folder of predictions in the official layout (read only)")
    s.add_argument("--out", type=ca.writable_dir("--out"),
                   help="folder for the score CSVs (default: <predictions>-scores beside the predictions folder)")
    s.add_argument("--json", action="store_true", help="print the scores as JSON")
    s.add_argument("--plugin", action="append", default=[], type=ca.plugin_file,
                   help="Python file registering extra tasks (repeatable)")
    s.set_defaults(func=cmd_score)
    return p


def _quiet_stdout() -> None:
    """After a closed pipe (``bench list results | head -1``), point stdout at /dev/null so that the
    interpreter's final flush does not fail again (the recipe of Python's ``signal`` documentation)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    """Run ``bench`` with ``argv``; return the exit code (0 ok, 1 a bug or failed jobs, 2 a user error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help and --version
            return int(e.code or 0)
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe fails here, inside the handler, not at interpreter exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BUG
    except UserError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted: finished results are kept; rerun the same command to do the rest", file=sys.stderr)
        return 130
    except OSError as e:  # a file the machine refused (permissions, a full disk, a vanished mount): the user's to fix
        if not e.filename:
            return _bug(e, debug)
        if debug:
            traceback.print_exc()
        print(f"error: {e.filename}: {e.strerror or e}: check the path, its permissions and free space", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as e:  # noqa: BLE001 - the last resort: a bug is one line unless --debug asks for more
        return _bug(e, debug)


def _bug(e: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(e)
    else:
        print(f"error: {ca.bug_line(e)} (a bug; run with --debug for the traceback)", file=sys.stderr)
    return EXIT_BUG

if __name__ == "__main__":
    sys.exit(main())
