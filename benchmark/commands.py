"""The ``bench`` subcommands that read results or manage local state (report, list, table, compare,
doctor, cache, weights, data), apart from :mod:`benchmark.cli`, which keeps the parser, ``main`` and the
commands that plan and run jobs. Their arguments arrive already typed and checked by
:mod:`benchmark.cliargs` (comma lists as lists, folders as existing ``Path`` s)."""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from benchmark import cliargs as ca
from benchmark.data import cache_root
from benchmark.errors import EXIT_USER_ERROR, UserError


def cmd_report(args: argparse.Namespace) -> int:
    from benchmark.report import write
    from benchmark.runner import load_plugins

    load_plugins(args.plugin)  # a plugin task's records get its own figure (Task.report_figure)
    print(f"report written to {write(Path(args.results), Path(args.out), args.title, holm=not args.no_holm)}")
    return 0


def _rounded(value: object) -> str:
    """A metric as ``bench list results`` shows it: 4 significant digits (the table rounds by ``--digits``)."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


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
                  f"{r.main_metric}={_rounded(r.metrics.get(r.main_metric))}")
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
    if args.published is not None and (args.ci or args.no_holm or args.reference):
        raise UserError("--ci, --no-holm and --reference apply to the leaderboard alone: run `bench table --ci` without --published")
    if args.published is not None:  # the leaderboard, then ours beside the papers' own numbers
        from benchmark.published import render as render_published

        print(render_published(Path(args.results), args.format, args.tasks, args.metric, args.methods, args.backbones,
                               args.digits, args.published or None, args.published_tol))
        return 0
    from benchmark.table import render

    print(render(Path(args.results), args.format, args.tasks, args.metric, args.methods, args.backbones, args.digits,
                 ci=args.ci, holm=not args.no_holm, reference=args.reference))
    return 0


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

    if args.dir and args.action in ("clear", "prune") and not Path(args.dir).exists():  # a typo must not look done
        raise UserError(f"--dir {args.dir}: no such folder, so no feature cache to {args.action}: check the path")
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
    names = list(dict.fromkeys(args.names)) or BACKBONES.names()  # `fetch mae mae` fetches once
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


def add_parsers(command: Callable[[str, str], argparse.ArgumentParser], debug: argparse.ArgumentParser) -> None:
    """This module's subcommands, each made by ``command(name, help)`` (the CLI's subparser factory); ``debug``
    is the parent parser carrying ``--debug`` (for the nested ``data toy``)."""
    results = ca.path("--results")
    plugins = {"action": "append", "default": [], "type": ca.plugin_file,
               "help": "Python file registering extra methods/backbones/tasks (repeatable)"}
    rep = command("report", "one self-contained HTML page: leaderboard, plots, cost, provenance")
    rep.add_argument("--results", default="results", type=results, help="result folder to report (default: results)")
    rep.add_argument("--out", required=True, type=ca.new_file("--out", (".html", ".htm")), help="HTML file to write")
    rep.add_argument("--title", default="i2v-bench report", type=ca.text("--title"), help="the page's title")
    rep.add_argument("--no-holm", action="store_true",
                     help="judge significance on unadjusted p-values (default: Holm-adjusted across the leaderboard)")
    rep.add_argument("--plugin", **plugins)
    rep.set_defaults(func=cmd_report)

    ls = command("list", "list methods, backbones, tasks, suites or results")
    ls.add_argument("what", choices=["methods", "backbones", "tasks", "suites", "results"], help="what to list")
    ls.add_argument("--results", default="results", type=results, help="result folder (with `results`; default: results)")
    ls.add_argument("--plugin", **plugins)
    ls.add_argument("--stale", action="store_true", help="with `results`: the records that no longer match their "
                    "identity (older task/method version, other weights or data), and why")
    ls.set_defaults(func=cmd_list)

    t = command("table", "leaderboard of the results")
    t.add_argument("--results", default="results", type=results, help="result folder (default: results)")
    t.add_argument("--format", default="markdown", type=ca.choice("table format", ("markdown", "latex", "html", "csv")),
                   help="markdown, latex, html or csv (default markdown)")
    t.add_argument("--tasks", type=ca.names("--tasks", "--tasks davis,ucf101_cls"), help="comma-separated tasks to show (default: all)")
    t.add_argument("--methods", type=ca.names("--methods", "--methods frozen,cosettle"), help="comma-separated methods to show (default: all)")
    t.add_argument("--backbones", type=ca.names("--backbones", "--backbones mae,dino"), help="comma-separated backbones to show (default: all)")
    t.add_argument("--metric", type=ca.text("--metric"), help="show this metric instead of each task's main metric")
    t.add_argument("--digits", type=ca.int_range(0, 10, "--digits"), default=3, help="decimals in the cells, 0-10 (default 3)")
    t.add_argument("--ci", action="store_true", help="print the paired 95%% CI of each tested Δ after it")
    t.add_argument("--no-holm", action="store_true",
                   help="judge the † marks on unadjusted p-values (default: Holm-adjusted across the table)")
    t.add_argument("--reference", type=ca.name("--reference"), metavar="METHOD",
                   help="the method Δ and the † tests compare with (default: frozen); it must have results in the table")
    t.add_argument("--published", nargs="?", const=[], metavar="TABLES", type=ca.names("--published", "--published cosettle"),
                   help="add ours beside the published values (configs/published/; all tables, or these comma-separated)")
    t.add_argument("--published-tol", type=ca.float_range(0, 1, "--published-tol"),
                   help="flag cells whose |ours - published| exceeds this (fractions; default 0.01, one point)")
    t.set_defaults(func=cmd_table)

    cmp = command("compare", "per-sample diff of method B against method A on one task, with a paired test")
    cmp.add_argument("a", type=ca.text("A"), help="reference method, METHOD or METHOD@VARIANT (e.g. frozen)")
    cmp.add_argument("b", type=ca.text("B"), help="method compared with it, METHOD or METHOD@VARIANT")
    cmp.add_argument("--task", required=True, type=ca.name("--task"), help="the task both methods were evaluated on")
    cmp.add_argument("--results", default="results", type=results, help="result folder (default: results)")
    cmp.add_argument("--backbone", type=ca.name("--backbone"), help="needed when both methods have results on several backbones")
    cmp.add_argument("--top", type=ca.int_range(0, 1_000_000, "--top"), default=20,
                     help="rows of better and of worse samples shown (0: all)")
    cmp.add_argument("--resamples", type=ca.int_range(1, 1_000_000, "--resamples"), default=10000,
                     help="bootstrap resamples and random sign flips (1 to 1e6)")
    cmp.add_argument("--seed", type=ca.int_range(0, ca.SEED_MAX, "--seed"), default=0, help="seed of the resampling")
    cmp.add_argument("--test", default="auto", choices=["auto", "permutation", "sign", "bootstrap"],
                     help="auto: sign-flip permutation with one seed per method, hierarchical bootstrap test with several")
    cmp.add_argument("--ci", default="percentile", choices=["percentile", "bca"], help="bootstrap interval")
    cmp.set_defaults(func=cmd_compare)

    doc = command("doctor", "check the environment (versions, decoders, GPU, folders, weights)")
    doc.add_argument("--results", default="results", type=results, help="result folder to check for writing")
    doc.set_defaults(func=cmd_doctor)

    c = command("cache", "list, size, clear or prune the shared frozen-feature cache")
    c.add_argument("action", choices=["ls", "du", "clear", "prune"],
                   help="ls: entries; du: sizes per backbone; clear: delete entries; prune: least recently used ones")
    c.add_argument("--results", default="results", type=results,
                   help="its cache is <results>/cache/features unless $I2V_BENCH_CACHE is set")
    c.add_argument("--dir", type=ca.path("--dir"), help="the feature cache folder itself")
    c.add_argument("--backbone", type=ca.name("--backbone"), help="only this backbone's entries")
    c.add_argument("--max-size", type=ca.size, help="prune: remove least recently used entries down to this size (e.g. 20G)")
    c.set_defaults(func=cmd_cache)

    w = command("weights", "list, fetch or verify backbone weights (authors' release files or timm's hub)")
    w.add_argument("action", choices=["list", "fetch", "verify"],
                   help="list: sources, files and digests; fetch: download what is missing; verify: re-hash present files")
    w.add_argument("names", nargs="*", metavar="BACKBONE", type=ca.name("BACKBONE"), help="backbones (default for list and verify: all)")
    w.add_argument("--plugin", **plugins)
    w.set_defaults(func=cmd_weights)

    d = command("data", "generate data")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="KIND", help="toy: the toy suite")
    toy = dsub.add_parser("toy", help="write the toy suite in the real data sets' layouts", parents=[debug])
    toy.add_argument("--out", required=True, type=ca.writable_dir("--out"), help="folder to write the toy suite into")
    toy.add_argument("--seed", type=ca.int_range(0, ca.SEED_MAX, "--seed"), default=0, help="seed of the generated data")
    toy.add_argument("--size", default="small", choices=["small", "medium"], help="small (seconds) or medium")
    toy.set_defaults(func=cmd_data)
