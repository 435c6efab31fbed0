"""``bench``: the command line of i2v-bench.

Start-up stays light: only argparse, YAML and the lazy registries are imported until a subcommand
needs torch, so ``bench --help`` and ``bench list`` answer at once. Every user mistake surfaces as
one line on stderr and exit code 2 (:class:`benchmark.errors.UserError`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchmark.data import cache_root
from benchmark.errors import EXIT_USER_ERROR, UserError


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


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
    """``--data DATASET=DIR`` items, each a known data set (configs/datasets.yaml) and an existing folder."""
    from benchmark.config import datasets, suggest

    out = {}
    for item in items:
        name, eq, folder = item.partition("=")
        if not eq or not name or not folder:
            raise UserError(f"--data {item!r} must look like DATASET=DIR, e.g. --data davis=/data/DAVIS")
        if name not in datasets():
            raise UserError(f"--data names unknown data set {name!r}: {suggest(name, list(datasets()))}"
                            f"known: {', '.join(datasets())}")
        if not Path(folder).is_dir():
            raise UserError(f"--data {name}={folder}: folder {folder} does not exist; pass the data set's folder")
        out[name] = folder
    return out


def _seeds(text: str | None) -> list[int]:
    try:
        return [int(s) for s in _csv(text)] if text else [0]
    except ValueError:
        raise UserError(f"--seeds {text!r} must be comma-separated integers, e.g. --seeds 0,1,2") from None


def _spec_fields(args: argparse.Namespace) -> tuple[dict[str, Any], list[int]]:
    """What `run` and `sweep` share: plugins loaded, suite, tasks, data, overrides → RunSpec fields, and the seeds."""
    from benchmark.config import dataset_folder_name, suggest, suites
    from benchmark.registry import load_plugin
    from benchmark.results import writable_problem

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
    tasks = _csv(args.tasks) or list(suite.get("tasks", []))
    if not tasks:
        raise UserError("no tasks to run: pass --tasks a,b or --suite NAME (see `bench list tasks`)")
    problem = writable_problem(Path(args.results))
    if problem:
        raise UserError(f"cannot write results under {args.results} ({problem}): choose a writable --results folder")
    data_root = Path(args.data_root) if args.data_root else None
    if data_root is None and suite.get("data") == "toy":
        from benchmark.data.toy import generate

        data_root = generate(cache_root() / "toy" / f"{suite.get('toy_size', 'small')}-seed0", 0, suite.get("toy_size", "small"))
    if data_root is not None and not data_root.is_dir():
        raise UserError(f"--data-root {data_root} does not exist: pass the folder that holds the data sets")
    train_data = Path(args.train_data) if args.train_data else None
    if train_data is not None and not train_data.is_dir():
        raise UserError(f"--train-data {train_data} does not exist: pass the folder of unlabelled training videos")
    if train_data is None and data_root is not None and suite.get("train_data"):
        candidate = data_root / dataset_folder_name(suite["train_data"])
        train_data = candidate if candidate.is_dir() else None
    seeds = _seeds(args.seeds)
    overrides = _overrides(args, suite)
    datasets = _datasets(args.data)
    fields = dict(
        tasks=tasks, results=Path(args.results), data_root=data_root, train_data=train_data, datasets=datasets,
        weights=args.weights, overrides=overrides, suite=args.suite, tag=args.tag,
        suite_overrides={k: v for k, v in (suite.get("overrides") or {}).items() if v},
        plugins=[str(Path(p).resolve()) for p in args.plugin],
        force=args.force, device=args.device, progress=not args.no_progress, cache=not args.no_cache,
    )
    return fields, seeds


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

    todo = []
    resolved_all = [resolve(spec) for spec in specs]  # a bad name fails here, before anything is printed
    from benchmark.preflight import check

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
    from benchmark.table import render

    print(render(Path(args.results), "markdown", fields["tasks"], methods=[args.method], backbones=[args.backbone]))
    return 0


def _submit(args: argparse.Namespace, fields: dict[str, Any], specs: list, methods: list[str], backbones: list[str]) -> int:
    """Plan, submit through submitit, wait, print the table; failed jobs are recorded and retried on rerun."""
    from benchmark import sweep
    from benchmark.table import render

    from benchmark.preflight import check

    executor_config = getattr(args, "executor_config", None)
    check(specs, executor=args.executor, executor_config=Path(executor_config) if executor_config else None)
    planned = sweep.plan(specs)
    _print_overrides(fields, methods, backbones)
    print(sweep.describe(planned), file=sys.stdout if getattr(args, "dry_run", False) else sys.stderr)
    if getattr(args, "dry_run", False):
        return 0
    cfg = sweep.executor_config(args.executor, Path(args.executor_config) if getattr(args, "executor_config", None) else None)
    report = sweep.run(planned, args.executor, Path(args.results) / "jobs", cfg, getattr(args, "max_parallel", None),
                       progress=not args.no_progress)
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
    methods, backbones = _csv(args.methods), _csv(args.backbones)
    sweep.require_grid(methods, backbones)
    fields, seeds = _spec_fields(args)
    return _submit(args, fields, sweep.grid(fields, methods, backbones, seeds), methods, backbones)


def cmd_report(args: argparse.Namespace) -> int:
    from benchmark.report import write

    print(f"report written to {write(Path(args.results), Path(args.out), args.title)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from benchmark.registry import BACKBONES, METHODS, TASKS, load_plugin

    for plugin in args.plugin:
        load_plugin(plugin)
    if args.what == "results":
        if args.stale:
            from benchmark.staleness import stale_records

            for record, why in stale_records(Path(args.results)):
                print(f"{record.path}: {why}")
            return 0
        from benchmark.results import iter_results

        for r in iter_results(Path(args.results)):
            print(f"{r.method:<12} {r.backbone_label:<28} {r.task:<18} {r.variant:<16} seed {r.seed}  "
                  f"{r.main_metric}={r.metrics.get(r.main_metric)}")
        return 0
    if args.what == "suites":
        from benchmark.config import suites

        for name, s in suites().items():
            print(f"{name:<10} {', '.join(s.get('tasks', []))}")
        return 0
    reg = {"methods": METHODS, "backbones": BACKBONES, "tasks": TASKS}[args.what]
    for name in reg.names():
        print(f"{name:<28} {reg.summary(name)}")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    if args.published is None and args.published_tol is not None:
        raise UserError("--published-tol applies to --published: add --published (all tables) or --published NAME")
    if args.published is not None:  # the leaderboard, then ours beside the papers' own numbers
        from benchmark.published import render as render_published

        print(render_published(Path(args.results), args.format, _csv(args.tasks) or None, args.metric,
                               _csv(args.methods) or None, _csv(args.backbones) or None, args.digits,
                               _csv(args.published) or None, args.published_tol))
        return 0
    from benchmark.table import render

    print(render(Path(args.results), args.format, _csv(args.tasks) or None, args.metric, _csv(args.methods) or None,
                 _csv(args.backbones) or None, args.digits))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Plan (and without --dry-run, run through the sweep's path) the runs behind a published table."""
    from benchmark import reproduce, sweep

    plan = reproduce.plan(args.table, _csv(args.backbones) or None, _seeds(args.seeds),
                          Path(args.data_root) if args.data_root else None, _datasets(args.data),
                          Path(args.train_data) if args.train_data else None, _csv(args.tasks) or None)
    print(reproduce.describe(plan))
    if args.dry_run:
        return 0
    reproduce.as_sweep(plan, args)
    fields, seeds = _spec_fields(args)
    return _submit(args, fields, sweep.grid(fields, plan.methods, plan.backbones, seeds), plan.methods, plan.backbones)


def cmd_compare(args: argparse.Namespace) -> int:
    from benchmark.compare import compare

    print(compare(Path(args.results), args.a, args.b, args.task, args.backbone, args.top, resamples=args.resamples,
                  seed=args.seed, test=args.test, ci=args.ci))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from benchmark.doctor import doctor

    return doctor(Path(args.results), cache_root())


def cmd_cache(args: argparse.Namespace) -> int:
    from benchmark.cache import default_root
    from benchmark.cache_admin import report

    print(report(args.action, Path(args.dir) if args.dir else default_root(args.results), args.backbone, args.max_size))
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from benchmark.backbones import fetch
    from benchmark.registry import BACKBONES, load_plugin

    for plugin in args.plugin:
        load_plugin(plugin)
    if args.action == "fetch" and not args.names:
        raise UserError("bench weights fetch needs backbone names, e.g. `bench weights fetch mae dino` (see `bench weights list`)")
    for name in args.names:
        BACKBONES.check(name)
    names = args.names or BACKBONES.names()
    if args.action == "list":
        print(fetch.listing(names))
    elif args.action == "fetch":
        for name in names:
            print(fetch.fetch(name))
    else:
        problems = fetch.verify(names)
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USER_ERROR if problems else 0
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from benchmark.data.toy import generate

    out = generate(Path(args.out), seed=args.seed, size=args.size)
    print(f"toy suite written to {out}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from tasks.scoring import score

    return score(args.dataset, Path(args.data_root), Path(args.predictions), args.json)


def _add_run_arguments(r: argparse.ArgumentParser) -> None:
    """Flags shared by `run` and `sweep` (read by :func:`_spec_fields`)."""
    r.add_argument("--tasks", help="comma-separated task names")
    r.add_argument("--suite", help="a suite from configs/suites.yaml (toy generates its own data)")
    r.add_argument("--data-root", help="folder holding the data sets (DAVIS/, UCF101/, ...) or one data set")
    r.add_argument("--data", action="append", default=[], metavar="DATASET=DIR", help="explicit folder of one data set")
    r.add_argument("--train-data", help="folder of unlabelled training videos (methods that train)")
    r.add_argument("--results", default="results", help="result folder (default: results)")
    r.add_argument("--seeds", help="comma-separated seeds (default 0)")
    r.add_argument("--weights", help="backbone weight file in its authors' format")
    r.add_argument("--config", help="overrides file (YAML or .py, may inherit with _base_): {section: {key: value}}, "
                                    "or a variant of a default file (_base_: configs/methods/cosettle.yaml)")
    r.add_argument("--offline", action="store_true", help="never reach the network for weights (as HF_HUB_OFFLINE=1)")
    r.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one value")
    r.add_argument("--plugin", action="append", default=[], help="Python file registering extra methods/tasks")
    r.add_argument("--device", default="auto")
    r.add_argument("--force", action="store_true", help="recompute results that already exist")
    r.add_argument("--tag", help="name this configuration's variant (default: derived from its diff against the defaults)")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--no-cache", action="store_true", help="neither read nor write the shared frozen-feature cache")


def _add_submit_arguments(p: argparse.ArgumentParser, dry_run: str) -> None:
    """Flags of the commands that submit a grid through :func:`_submit` (`sweep`, `reproduce`)."""
    p.add_argument("--executor", default="local", choices=["inline", "debug", "local", "slurm"])
    p.add_argument("--max-parallel", type=int, help="jobs at once (local) / array parallelism (slurm)")
    p.add_argument("--executor-config", help="YAML overriding configs/executor.yaml ({local: ..., slurm: ...})")
    p.add_argument("--dry-run", action="store_true", help=dry_run)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="i2v-bench: image-to-video transfer benchmark")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="train (if needed) and evaluate a method on a backbone")
    r.add_argument("--method", required=True)
    r.add_argument("--backbone", required=True)
    r.add_argument("--executor", default="inline", choices=["inline", "debug", "local", "slurm"])
    _add_run_arguments(r)
    r.set_defaults(func=cmd_run)

    sw = sub.add_parser("sweep", help="run a methods x backbones x seeds grid through submitit, skipping what is done")
    sw.add_argument("--methods", help="comma-separated method names")
    sw.add_argument("--backbones", help="comma-separated backbone names")
    sw.add_argument("--status", action="store_true",
                    help="show the running sweep of --results: queued, running, done and failed jobs, ids and logs")
    _add_submit_arguments(sw, "print the plan and its size, submit nothing")
    _add_run_arguments(sw)
    sw.set_defaults(func=cmd_sweep)

    rep = sub.add_parser("report", help="one self-contained HTML page: leaderboard, plots, cost, provenance")
    rep.add_argument("--results", default="results")
    rep.add_argument("--out", required=True, help="HTML file to write")
    rep.add_argument("--title", default="i2v-bench report")
    rep.set_defaults(func=cmd_report)

    ls = sub.add_parser("list", help="list methods, backbones, tasks, suites or results")
    ls.add_argument("what", choices=["methods", "backbones", "tasks", "suites", "results"])
    ls.add_argument("--results", default="results")
    ls.add_argument("--plugin", action="append", default=[])
    ls.add_argument("--stale", action="store_true", help="with `results`: the records that no longer match their "
                    "identity (older task/method version, other weights or data), and why")
    ls.set_defaults(func=cmd_list)

    t = sub.add_parser("table", help="leaderboard of the results")
    t.add_argument("--results", default="results")
    t.add_argument("--format", default="markdown", help="markdown, latex, html or csv")
    t.add_argument("--tasks")
    t.add_argument("--methods", help="comma-separated methods to show (default: all)")
    t.add_argument("--backbones", help="comma-separated backbones to show (default: all)")
    t.add_argument("--metric", help="show this metric instead of each task's main metric")
    t.add_argument("--digits", type=int, default=3, help="decimals in the cells (default 3)")
    t.add_argument("--published", nargs="?", const="", metavar="TABLES",
                   help="add ours beside the published values (configs/published/; all tables, or these comma-separated)")
    t.add_argument("--published-tol", type=float,
                   help="flag cells whose |ours - published| exceeds this (fractions; default 0.01, one point)")
    t.set_defaults(func=cmd_table)

    rp = sub.add_parser("reproduce", help="the runs, data and weights behind a published table; run what is missing")
    rp.add_argument("table", help="a published table (configs/published/<table>.yaml), e.g. cosettle")
    rp.add_argument("--backbones", help="comma-separated backbones (default: every one of ours the table reports)")
    _add_submit_arguments(rp, "print the runs and what is missing here; run nothing")
    _add_run_arguments(rp)
    rp.set_defaults(func=cmd_reproduce)

    cmp = sub.add_parser("compare", help="per-sample diff of method B against method A on one task, with a paired test")
    cmp.add_argument("a", help="reference method, METHOD or METHOD@VARIANT (e.g. frozen)")
    cmp.add_argument("b", help="method compared with it, METHOD or METHOD@VARIANT")
    cmp.add_argument("--task", required=True)
    cmp.add_argument("--results", default="results")
    cmp.add_argument("--backbone", help="needed when both methods have results on several backbones")
    cmp.add_argument("--top", type=int, default=20, help="rows of better and of worse samples shown (0: all)")
    cmp.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples and random sign flips")
    cmp.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    cmp.add_argument("--test", default="auto", choices=["auto", "permutation", "sign", "bootstrap"],
                     help="auto: sign-flip permutation with one seed per method, hierarchical bootstrap test with several")
    cmp.add_argument("--ci", default="percentile", choices=["percentile", "bca"], help="bootstrap interval")
    cmp.set_defaults(func=cmd_compare)

    doc = sub.add_parser("doctor", help="check the environment (versions, decoders, GPU, folders, weights)")
    doc.add_argument("--results", default="results", help="result folder to check for writing")
    doc.set_defaults(func=cmd_doctor)

    c = sub.add_parser("cache", help="list, size, clear or prune the shared frozen-feature cache")
    c.add_argument("action", choices=["ls", "du", "clear", "prune"])
    c.add_argument("--results", default="results", help="its cache is <results>/cache/features unless $I2V_BENCH_CACHE is set")
    c.add_argument("--dir", help="the feature cache folder itself")
    c.add_argument("--backbone", help="only this backbone's entries")
    c.add_argument("--max-size", help="prune: remove least recently used entries down to this size (e.g. 20G)")
    c.set_defaults(func=cmd_cache)

    w = sub.add_parser("weights", help="list, fetch or verify backbone weights (authors' release files or timm's hub)")
    w.add_argument("action", choices=["list", "fetch", "verify"],
                   help="list: sources, files and digests; fetch: download what is missing; verify: re-hash present files")
    w.add_argument("names", nargs="*", metavar="BACKBONE", help="backbones (default for list and verify: all)")
    w.add_argument("--plugin", action="append", default=[], help="Python file registering extra backbones")
    w.set_defaults(func=cmd_weights)

    d = sub.add_parser("data", help="generate data")
    dsub = d.add_subparsers(dest="data_command", required=True)
    toy = dsub.add_parser("toy", help="write the toy suite in the real data sets' layouts")
    toy.add_argument("--out", required=True)
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("--size", default="small", choices=["small", "medium"])
    toy.set_defaults(func=cmd_data)

    s = sub.add_parser("score", help="score a folder of predictions against a data set")
    s.add_argument("dataset", choices=["davis", "vip", "jhmdb"])
    s.add_argument("--data-root", required=True)
    s.add_argument("--predictions", required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted: finished results are kept; rerun the same command to do the rest", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
