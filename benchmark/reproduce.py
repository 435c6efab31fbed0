"""``bench reproduce cosettle``: what reproducing a published table takes, and what this machine lacks.

The runs come from the published table itself (``configs/published/<table>.yaml``): every method × backbone
× task it gives a value for, on each backbone of our registry (rows under the authors' own encoders, such
as Co-Settle's ViT-B/16 DINO v2, are listed as not runnable, with the checkpoint the table links). For
each run it names the data folders (``configs/datasets.yaml`` under ``--data-root``, or ``--data``) and
checks them with the data set's own reader (:mod:`benchmark.data`), which names the first missing file; it
names the weight file each backbone loads and where it is looked for (:func:`weights_entry`). The runs
set the table's ``preset`` (for Co-Settle, T-CORE's protocol: the authors' evaluation code is unreleased)
and the task options its rows name (JHMDB ``pck: crw``, the ``eval_pck.py`` convention of the published
PCK@0.1), so that the results sit beside the published values (:mod:`benchmark.published`). The weights are
our own backbones' (the authors' releases); where the table links a base checkpoint of its own, the plan
says so rather than implying the two are one file. The plan reads; it never writes. Without ``--dry-run`` the CLI submits the missing runs through the sweep's path
(:mod:`benchmark.sweep`), after refusing if anything the runs need is missing.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from benchmark.config import CONFIG_DIR, dataset_folder_name, read_yaml
from benchmark.errors import UserError
from benchmark.published import Published, load

TRAIN_DATASET = "kinetics"  # Co-Settle trains on K400 frames (its README, "Dataset"); our reader takes any videos
TRAINING_METHODS = ("cosettle", "advise", "finetune")
BASE_METHOD = "frozen"  # a table's base rows: the backbone's own checkpoint, evaluated frozen


@dataclass
class Item:
    """One thing a run needs: a data folder or a weight file, where it was looked for, and whether it is there."""

    kind: str  # "data" or "weights"
    name: str
    where: str
    ok: bool
    detail: str = ""


@dataclass
class Plan:
    table: str
    runs: list[tuple[str, str, str]]  # (method, backbone, task)
    seeds: list[int]
    preset: str = ""  # the preset matching the table's evaluation; every run sets it on its tasks
    options: dict[str, dict[str, str]] = field(default_factory=dict)  # task -> options the table's rows name
    checkpoints: dict[tuple[str, str], str] = field(default_factory=dict)  # (method, backbone) -> the table's link
    sources: dict[str, str] = field(default_factory=dict)  # backbone -> the table's base encoder, as it names it
    backbone_options: dict[str, str] = field(default_factory=dict)  # set on every backbone (e.g. input_norm)
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # backbones not run, or run without a published value

    @property
    def missing(self) -> list[Item]:
        return [i for i in self.items if not i.ok]

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(m for m, _, _ in self.runs))

    @property
    def backbones(self) -> list[str]:
        return list(dict.fromkeys(b for _, b, _ in self.runs))

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(t for _, _, t in self.runs))


def backbone_meta(name: str) -> Any:
    """The :class:`~benchmark.backbones.base.BackboneMeta` of a registered backbone: the one place that knows
    where it lives (``vit.SPECS`` today; a registered variant class's ``meta`` once backbones register as
    classes), or None for a backbone without an authors' file (EfficientNet's wheel, random test encoders)."""
    from benchmark.backbones import vit

    specs = getattr(vit, "SPECS", None)
    if specs is not None:
        return specs[name][0] if name in specs else None
    from benchmark.registry import BACKBONES

    return getattr(BACKBONES.get(name), "meta", None)


def weights_entry(name: str) -> Item:
    """Where backbone ``name``'s weights would be read from, in the order the backbone looks: the weights
    folder (``$I2V_BENCH_WEIGHTS``), then timm's hub cache (offline); never the network."""
    from benchmark.backbones.weights import hub_cache_file, weights_dir

    meta = backbone_meta(name)
    if meta is None or not meta.weights_file:
        return Item("weights", name, "built in (no authors' file)", True)
    path = weights_dir() / meta.weights_file
    if path.is_file():
        return Item("weights", name, str(path), True)
    cached = hub_cache_file(meta.hub_tag) if meta.hub_tag else None
    if cached:
        return Item("weights", name, f"hub cache {meta.hub_tag}: {cached}", True)
    hub = f" (or timm's hub cache holding {meta.hub_tag})" if meta.hub_tag else ""
    return Item("weights", name, str(path), False, f"download {meta.weights_file} from {meta.weights_url}{hub}")


def _readers() -> dict[str, Callable[[Path], Any]]:
    """Each data set's own reader with the split the task reads by default (``configs/tasks/*.yaml``)."""
    from benchmark.data.davis import load_davis
    from benchmark.data.jhmdb import load_jhmdb
    from benchmark.data.kinetics import list_train_videos
    from benchmark.data.vip import load_vip

    task = {t: read_yaml(CONFIG_DIR / "tasks" / f"{t}.yaml") for t in ("davis", "vip", "jhmdb")}
    return {
        "davis": lambda p: load_davis(p, task["davis"]["split"], task["davis"]["resolution"]),
        "vip": lambda p: load_vip(p, task["vip"]["split"]),
        "jhmdb": lambda p: load_jhmdb(p, task["jhmdb"]["split"], task["jhmdb"]["subset"]),
        TRAIN_DATASET: list_train_videos,
    }


def data_entry(dataset: str, data_root: Path | None, datasets: dict[str, str], train_data: Path | None = None) -> Item:
    """Whether ``dataset``'s folder is present and laid out as its reader expects (the reader's own message if not)."""
    if dataset == TRAIN_DATASET and train_data is not None:
        folder: Path | None = train_data
    elif dataset in datasets:
        folder = Path(datasets[dataset])
    elif data_root is not None:
        folder = data_root / dataset_folder_name(dataset)
    else:
        return Item("data", dataset, f"<--data-root>/{dataset_folder_name(dataset)}", False, "no --data-root given")
    reader = _readers().get(dataset)
    if reader is None:
        ok = folder.is_dir()
        return Item("data", dataset, str(folder), ok, "" if ok else "folder does not exist")
    try:
        found = reader(folder)
    except UserError as e:
        return Item("data", dataset, str(folder), False, str(e))
    return Item("data", dataset, str(folder), True, f"{len(found)} videos")


def plan(table: str, backbones: list[str] | None = None, seeds: list[int] | None = None, data_root: Path | None = None,
         datasets: dict[str, str] | None = None, train_data: Path | None = None, tasks: list[str] | None = None) -> Plan:
    """The runs reproducing published ``table`` on ``backbones`` (default: every one of ours it reports) and
    ``tasks`` (default: all it reports), and what each needs on this machine. Reads only.

    Raises:
        UserError: unknown table or backbone name, or a task the table does not report.
    """
    from benchmark.registry import BACKBONES, TASKS

    rows: list[Published] = load([table])
    if not rows:
        raise UserError(f"published table {table!r} has no rows to reproduce (see configs/published/{table}.yaml)")
    ours = set(BACKBONES.names())
    for name in backbones or []:
        BACKBONES.check(name)
    reported = list(dict.fromkeys(p.backbone for p in rows))
    chosen = backbones or [b for b in reported if b in ours]
    cells = list(dict.fromkeys((p.method, p.task) for p in rows))
    reported_tasks = list(dict.fromkeys(t for _, t in cells))
    if set(tasks or []) - set(reported_tasks):
        raise UserError(f"--tasks {','.join(tasks or [])}: the {table} table reports only {', '.join(reported_tasks)}")
    cells = [(m, t) for m, t in cells if not tasks or t in tasks]
    options: dict[str, dict[str, str]] = {}
    for p in rows:
        options.setdefault(p.task, {}).update(p.options)
    out = Plan(table, [(m, b, t) for b in chosen for m, t in cells], seeds or [0], rows[0].preset,
               {t: o for t, o in options.items() if o and t in dict.fromkeys(t for _, t in cells)},
               {(p.method, p.backbone): p.checkpoint for p in rows if p.checkpoint},
               {p.backbone: p.source_backbone for p in rows if p.method == BASE_METHOD}, dict(rows[0].backbone_options))
    for b in reported:
        if b not in ours and (backbones is None):
            link = next((p.checkpoint for p in rows if p.backbone == b and p.checkpoint), None)
            source = next(p.source_backbone for p in rows if p.backbone == b)
            out.notes.append(f"not run: {b} ({source}) is not in our registry"
                             + (f"; the table's checkpoint: {link}" if link else ""))
    for b in chosen:
        if b not in reported:
            out.notes.append(f"{b} runs, but the {table} table publishes no value for it")
    needed = list(dict.fromkeys(TASKS.get(t).meta.dataset for t in out.tasks))
    if any(m in TRAINING_METHODS for m in out.methods):
        needed.append(TRAIN_DATASET)
    out.items = [data_entry(d, data_root, datasets or {}, train_data) for d in needed if d]
    out.items += [weights_entry(b) for b in chosen]
    return out


def checkpoint_notes(p: Plan) -> list[str]:
    """One line per backbone whose base row links a checkpoint other than the file our backbone loads: the
    table's encoder as it names it, its link, and ours. Whether the two hold the same weights is not known here
    (the table's link is the authors' copy; epochs are the table's words, not checked against our file)."""
    out = []
    for b in p.backbones:
        link = p.checkpoints.get((BASE_METHOD, b))
        meta = backbone_meta(b)
        ours = (meta.weights_url or meta.weights_file) if meta is not None else ""
        if link and link != ours:
            mine = meta.weights_file if meta is not None and meta.weights_file else "built-in weights"
            out.append(f"checkpoint differs: {b}: the table's base is {p.sources.get(b, b)} ({link}); ours loads "
                       f"{mine} (see weights below), not shown to be the same weights")
    return out


def describe(p: Plan) -> str:
    """The plan as text: runs, then each data folder and weight file, missing ones marked."""
    options = "".join(f", {t}.{k}={v}" for t, o in p.options.items() for k, v in o.items())
    options += "".join(f", <backbone>.{k}={v}" for k, v in p.backbone_options.items())
    lines = [f"reproduce {p.table}: {len(p.runs)} runs x {len(p.seeds)} seed(s) {', '.join(map(str, p.seeds))}"
             + (f", preset {p.preset} on every task{options} (the protocol the table's values are compared under)"
                if p.preset else "")]
    for m in p.methods:
        for b in p.backbones:
            tasks = [t for mm, bb, t in p.runs if (mm, bb) == (m, b)]
            link = p.checkpoints.get((m, b))
            lines.append(f"  run {m} x {b}: {', '.join(tasks)}" + (f"  (the table's own checkpoint: {link})" if link else ""))
    lines += [f"  note: {n}" for n in [*p.notes, *checkpoint_notes(p)]]
    for kind in ("data", "weights"):
        lines.append(f"{kind}:")
        for i in (i for i in p.items if i.kind == kind):
            mark = "ok     " if i.ok else "MISSING"
            lines.append(f"  {mark} {i.name:<10} {i.where}" + (f"  ({i.detail})" if i.detail else ""))
    lines.append(f"missing here: {len(p.missing)} of {len(p.items)}"
                 + (f" ({', '.join(f'{i.kind} {i.name}' for i in p.missing)})" if p.missing else ""))
    return "\n".join(lines)


def as_sweep(p: Plan, args: argparse.Namespace) -> None:
    """Point the run flags of ``args`` (``--tasks``, ``--seeds``, ``--set``, ``--train-data``) at plan ``p``, so
    that the sweep's own path (``bench sweep``) runs it, with the table's preset and task options (``jhmdb.pck=crw``)
    set first so that a ``--set`` of the user's own still wins.

    Raises:
        UserError: nothing to run, or a data folder or weight file missing.
    """
    if not p.runs:
        raise UserError(f"nothing to run: the {p.table} table reports no backbone of our registry (see the notes above)")
    if p.missing:
        raise UserError(f"cannot reproduce {p.table}: {len(p.missing)} data folders or weight files are missing "
                        "(listed above as MISSING): fetch them, then rerun")
    args.tasks, args.seeds = list(p.tasks), list(p.seeds)
    options = [f"{t}.{k}={v}" for t, o in p.options.items() for k, v in o.items()]
    options += [f"{b}.{k}={v}" for b in p.backbones for k, v in p.backbone_options.items()]
    args.set = [f"{t}.preset={p.preset}" for t in p.tasks if p.preset] + options + list(args.set)
    if args.train_data is None and args.data_root:
        args.train_data = str(Path(args.data_root) / dataset_folder_name(TRAIN_DATASET))
