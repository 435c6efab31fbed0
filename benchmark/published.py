"""The papers' own numbers beside ours: published tables as cited data, and Δ(ours − published) per cell.

``configs/published/<source>.yaml`` holds one published table each (Co-Settle's README table, CRW's README,
DINO's Table 5, ...), its values typed once from the source with the table and row they were read from.
They are reference values, never results: nothing here writes a record, and a published row only ever
appears in its own column. Each file is validated with pydantic (``extra="forbid"``), so a misspelt field
or a row without its source row is refused with one line naming the file, not silently ignored.

A published value sits beside one of our cells when method, backbone, task and metric are equal *and* the
evaluation protocol is the one the source used: the file's ``preset`` against the cell's preset, read from
a ``preset`` column if the frame has one, else from the variant name (``preset=dino``), else the task's
default preset (``configs/tasks/<task>.yaml``). A row may also name task options its source's evaluation
fixed beyond the preset (``options``; JHMDB's ``pck``: the published PCK@0.1 tables score with CRW's
``eval_pck.py``, our ``pck: crw``, while the task's default is ``pck: fixed``); a cell meets such a row only
when its own value of each option is the same, read like the preset (a column of that name, ``pck=crw`` in
the variant name, else the task's default), so a ``fixed`` PCK is never compared with a ``crw`` number; a file's
``backbone_options`` (Co-Settle's ``input_norm: imagenet``) are met likewise (:func:`_same_input`). Two published
values for one cell are refused, never chosen between. Values are stored as fractions, our metrics' scale; files
in percent are divided by 100.

The tolerance (``--published-tol``, default :data:`DEFAULT_TOL` = 0.01 absolute) flags a cell whose Δ is
larger than one point on the papers' percent scale, ten times the last digit of a value published to one
decimal: a flag says "this does not reproduce within a point", not why. It is coarser than some published
gains (Co-Settle's README: MoCo v3 +0.3, DINO v2 +0.6 J&F points), which the flag cannot judge; paired
per-sample statistics (``bench compare``) can.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tabulate import tabulate

from benchmark.config import CONFIG_DIR, read_yaml, suggest
from benchmark.errors import UserError

PUBLISHED_DIR = CONFIG_DIR / "published"
DEFAULT_TOL = 0.01


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where a whole file was read: the document, the table or section, and a link to that version."""

    document: str = Field(min_length=1)
    table: str = Field(min_length=1)
    url: str = Field(min_length=1)


class Row(_Strict):
    """One published cell. ``row`` is the source row's label (the citation); ``backbone`` is our registry
    name, or a name outside it for the authors' own encoder (then no cell of ours ever matches it)."""

    method: str = Field(min_length=1)
    backbone: str = Field(min_length=1)
    source_backbone: str = Field(min_length=1)
    task: str = Field(min_length=1)
    metric: str = Field(min_length=1)
    value: float
    row: str = Field(min_length=1)
    checkpoint: str | None = None
    options: dict[str, str] = {}  # task options the source's evaluation used beyond the preset, e.g. {pck: crw}
    note: str = ""


class PublishedFile(_Strict):
    source: Source
    scale: Literal["percent", "fraction"]
    preset: str
    backbone_options: dict[str, str] = {}  # backbone options of the source's code, e.g. {input_norm: imagenet}
    rows: list[Row]

    @model_validator(mode="after")
    def _in_range(self) -> "PublishedFile":
        top = 100.0 if self.scale == "percent" else 1.0
        for r in self.rows:
            if not 0.0 <= r.value <= top:
                raise ValueError(f"row {r.row!r} {r.metric} = {r.value} is outside [0, {top:g}] for scale {self.scale}")
        return self


@dataclass(frozen=True)
class Published:
    """A published value on our scale (a fraction), with its citation."""

    method: str
    backbone: str
    task: str
    metric: str
    value: float
    preset: str
    source: str  # file stem, e.g. "cosettle"
    cite: str  # "Co-Settle README.md (...), Checkpoints, row 'MoCo v3'"
    source_backbone: str
    checkpoint: str | None = None
    options: tuple[tuple[str, str], ...] = ()  # (task option, value) the source's evaluation used
    backbone_options: tuple[tuple[str, str], ...] = ()  # (backbone option, value) of the source's code

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.method, self.backbone, self.task, self.metric


def _why(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "top level"
    if err["type"] == "extra_forbidden":
        model = {"rows": Row, "source": Source}.get(str(err["loc"][0]), PublishedFile)
        return f"unknown field {where!r} (known: {', '.join(model.model_fields)})"
    if err["type"] == "missing":
        return f"{where} is missing (every row cites its source row with `row:`)"
    return f"{where}: {err['msg']}"


def read_file(path: Path) -> list[Published]:
    """The rows of one published table, validated, on our scale.

    Raises:
        UserError: one line naming the file and the first problem (unknown field, uncited row, a method
            or task outside our registries, a value outside its scale).
    """
    from benchmark.registry import METHODS, TASKS

    try:
        parsed = PublishedFile.model_validate(read_yaml(path))
    except ValidationError as e:
        raise UserError(f"published table {path}: {_why(e)}; fix the file") from None
    methods, tasks = set(METHODS.names()), set(TASKS.names())
    out = []
    for r in parsed.rows:
        for kind, name, known in (("method", r.method, methods), ("task", r.task, tasks)):
            if name not in known:
                raise UserError(f"published table {path}: row {r.row!r} names unknown {kind} {name!r}: "
                                f"{suggest(name, known)}use a registry name (`bench list {kind}s`)")
        options = set(read_yaml(CONFIG_DIR / "tasks" / f"{r.task}.yaml")) if r.options else set()
        for key in set(r.options) - options:  # a misspelt option would silently match no cell
            raise UserError(f"published table {path}: row {r.row!r} names option {key!r} that task {r.task!r} does "
                            f"not have: {suggest(key, options)}use a key of configs/tasks/{r.task}.yaml")
        scale = 100.0 if parsed.scale == "percent" else 1.0
        cite = f"{parsed.source.document}, {parsed.source.table}, row {r.row!r}"
        out.append(Published(r.method, r.backbone, r.task, r.metric, r.value / scale, parsed.preset, path.stem, cite,
                             r.source_backbone, r.checkpoint, tuple(sorted(r.options.items())),
                             tuple(sorted(parsed.backbone_options.items()))))
    return out


def sources(folder: Path = PUBLISHED_DIR) -> list[str]:
    """Names of the published tables (file stems) in ``folder``."""
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load(names: list[str] | None = None, folder: Path = PUBLISHED_DIR) -> list[Published]:
    """Every row of the published tables ``names`` (all when None), refusing a cell published twice in one protocol."""
    known = sources(folder)
    for name in names or []:
        if name not in known:
            raise UserError(f"no published table {name!r}: {suggest(name, known)}available: {', '.join(known)}")
    rows = [p for name in (names or known) for p in read_file(folder / f"{name}.yaml")]
    seen: dict[tuple[str, ...], Published] = {}
    for p in rows:
        other = seen.setdefault((*p.key, p.preset, *p.options), p)
        if other is not p:
            raise UserError(f"published tables {other.source} and {p.source} both give {' x '.join(p.key)} under "
                            f"preset {p.preset!r}: keep one of them in {folder}")
    return rows


def _task_default(task: str, key: str) -> str:
    path = CONFIG_DIR / "tasks" / f"{task}.yaml"
    return str(read_yaml(path).get(key) or "") if path.is_file() else ""


def cell_option(task: str, key: str, variant: str = "", value: str = "") -> str:
    """The value of task option ``key`` (``preset``, ``pck``) a cell of ours ran under: its column's
    ``value``, ``key=X`` in its variant name, else the task's default. A ``--tag``-named variant that changed
    it cannot be told apart from the default: give the frame a column named ``key`` to be exact."""
    if value:
        return value
    m = re.search(rf"(?:^|,){re.escape(key)}=([A-Za-z0-9_]+)", variant or "")
    return m.group(1) if m else _task_default(task, key)


def _same_input(backbone: str, ran: str, published: str) -> bool:
    """Whether a cell run with ``input_norm: ran`` saw the frames as the published one (``published``): the same
    option, or ``own`` statistics that are ImageNet's (MAE, DINO, ...: only CLIP, BLIP and EfficientNet-Lite0
    differ). A record older than the option ran ``own``."""
    if ran == published:
        return True
    from benchmark.backbones.base import IMAGENET_STATS
    from benchmark.registry import BACKBONES

    try:
        meta = getattr(BACKBONES.get(backbone), "meta", None)
    except UserError:  # a backbone outside our registry (a plugin's, not loaded): cannot tell
        return False
    return meta is not None and "imagenet" in (ran, published) and (tuple(meta.mean), tuple(meta.std)) == IMAGENET_STATS


def annotate(df: pd.DataFrame, published: list[Published], tol: float = DEFAULT_TOL) -> pd.DataFrame:
    """``df`` (rows of :func:`benchmark.table.summarise` or :func:`benchmark.table.frame`: method, backbone,
    task, metric and ``mean`` or ``value``) with ``published`` (the fraction), ``published_delta`` (ours −
    published), ``published_flag`` (|Δ| > ``tol``) and ``published_source`` (the citation) added. Cells
    nothing was published for stay NaN / False / "".

    Raises:
        UserError: a negative tolerance, or two published values matching one cell.
    """
    if not tol >= 0:
        raise UserError(f"--published-tol {tol} must be a non-negative absolute difference, e.g. 0.01")
    ours = df["mean"] if "mean" in df.columns else df["value"]
    by_key: dict[tuple[str, str, str, str], list[Published]] = {}
    for p in published:
        by_key.setdefault(p.key, []).append(p)
    variants = df["variant"] if "variant" in df.columns else pd.Series([""] * len(df), index=df.index)

    def ran(i: Any, task: str, key: str) -> str:
        column = df[key][i] if key in df.columns else ""
        return cell_option(task, key, str(variants[i]), "" if pd.isna(column) else str(column or ""))

    matched: list[Published | None] = []
    for i, row in df.iterrows():
        candidates = by_key.get((row["method"], row["backbone"], row["task"], row["metric"]), [])
        candidates = [p for p in candidates if p.preset == ran(i, row["task"], "preset")
                      and all(ran(i, row["task"], k) == v for k, v in p.options)
                      and all(_same_input(row["backbone"], str(row.get(k) or "own"), v) for k, v in p.backbone_options)]
        if len(candidates) > 1:
            raise UserError(f"{len(candidates)} published values match {row['method']} x {row['backbone']} x {row['task']} "
                            f"{row['metric']} ({', '.join(p.source for p in candidates)}): keep one of them")
        matched.append(candidates[0] if candidates else None)
    value = pd.Series([p.value if p else math.nan for p in matched], index=df.index, dtype=float)
    delta = ours.astype(float) - value
    return df.assign(published=value, published_delta=delta, published_flag=delta.abs() > tol,
                     published_source=[p.cite if p else "" for p in matched])


def comparison(annotated: pd.DataFrame, fmt: str = "markdown", digits: int = 3, tol: float = DEFAULT_TOL) -> str:
    """Ours beside the published value for every cell of :func:`annotate`'s frame, blank where nothing is
    published; flagged cells (|Δ| > ``tol``) are marked ``!``; the citations follow the table. ``fmt`` is
    markdown, latex or html (CSV carries the columns in the leaderboard's own rows, see :func:`render`)."""
    ours = "mean" if "mean" in annotated.columns else "value"
    keys = [k for k in ("backbone", "method", "variant", "task", "metric") if k in annotated.columns]
    cites = list(dict.fromkeys(c for c in annotated["published_source"] if c))

    def num(x: float, sign: bool = False) -> str:
        return "" if math.isnan(x) else (f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}")

    rows = [[*(r[k] for k in keys), num(r[ours]), num(r["published"]), num(r["published_delta"], sign=True),
             "!" if r["published_flag"] else "",
             f"[{cites.index(r['published_source']) + 1}]" if r["published_source"] else ""]
            for _, r in annotated.iterrows()]
    headers = [*keys, "ours", "published", "ours - published", f"off by >{tol:g}", "source"]
    if fmt == "latex":
        body = tabulate(rows, headers=headers, tablefmt="latex_booktabs", disable_numparse=True)
    elif fmt == "html":
        body = pd.DataFrame(rows, columns=headers).to_html(index=False, border=0, classes="published")
    else:
        body = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    notes = [f"Published values are the papers' own (configs/published/), on our fraction scale; ! marks "
             f"|ours - published| > {tol:g}. Blank: nothing published for that cell under its protocol.",
             *(f"[{i}] {c}" for i, c in enumerate(cites, 1))]
    if fmt == "latex":
        notes = [f"% {n}" for n in notes]
    elif fmt == "html":
        notes = [f"<p class=\"legend\">{html.escape(n)}</p>" for n in notes]
    return "\n".join([body, "", *notes])


def render(results: Path, fmt: str = "markdown", tasks: list[str] | None = None, metric: str | None = None,
           methods: list[str] | None = None, backbones: list[str] | None = None, digits: int = 3,
           names: list[str] | None = None, tol: float | None = None) -> str:
    """The leaderboard of ``results``, then ours beside the published tables ``names`` (all when None),
    flagged beyond ``tol`` (:data:`DEFAULT_TOL` when None)."""
    from benchmark.table import load_frame, render_summary, summarise

    tol = DEFAULT_TOL if tol is None else tol
    rows = load(names)  # a bad table name fails before any result is read
    summary = summarise(load_frame(results, tasks, metric, methods, backbones))
    annotated = annotate(summary, rows, tol)
    if fmt == "csv":  # one CSV: the leaderboard's rows with the published columns added
        return render_summary(annotated, fmt, digits, tasks)
    return render_summary(summary, fmt, digits, tasks) + "\n\n" + comparison(annotated, fmt, digits, tol)
