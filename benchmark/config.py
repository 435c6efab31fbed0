"""Configuration: YAML defaults under ``configs/``, a user file, then ``--set`` overrides.

Every default lives in one place: one YAML file per method (``configs/methods/<name>.yaml``) and per
task (``configs/tasks/<name>.yaml``), ``datasets.yaml`` and ``suites.yaml``; a backbone's options are
the typed keyword defaults of its registered class (timm keeps them beside the model, so do we).
Types and ranges live beside the values' owner as a pydantic model (``extra="forbid"``): the class's
``Config`` attribute, else :data:`benchmark.schemas.SCHEMAS`, else (backbones) the class's signature.
:func:`configure` merges and validates before anything is built, so ``temp: hot`` or ``topk: 0`` is a
one-line :class:`UserError`, never a failure after training. Without a model the check is the older
one: the override's type must match the default's.

Method and task files and ``--config`` files are read with ``mmengine.Config`` (:func:`load_file`), so
a file can inherit another with ``_base_``, as mmaction2 configs do; a file that inherits a method's
or task's default file is a *variant* of it (``configs/methods/cosettle_short.yaml``). The resolved
config is hashed and stored in every result, so a changed constant means a new result.
"""
from __future__ import annotations

import ast
import copy
import difflib
import hashlib
import inspect
import json
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def suggest(name: str, known: list[str] | set[str]) -> str:
    """``"did you mean 'x'? "`` for the closest of ``known`` to a mistyped ``name``, else ``""``."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def read_yaml(path: Path) -> Any:
    try:
        with open(path) as f:
            return yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist: check the path") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"config file {path}{where} is not valid YAML: fix its syntax") from None


@lru_cache(maxsize=None)
def _shared(name: str) -> dict[str, Any]:
    return read_yaml(CONFIG_DIR / f"{name}.yaml")


def suites() -> dict[str, Any]:
    return _shared("suites")


def datasets() -> dict[str, Any]:
    return _shared("datasets")


def dataset_folder_name(dataset: str) -> str:
    """Standard folder name of ``dataset`` under a data root (``davis`` → ``DAVIS``)."""
    return datasets().get(dataset, {}).get("folder", dataset)


def load_file(path: Path) -> dict[str, Any]:
    """A config file (``.yaml``, ``.json`` or ``.py``) through ``mmengine.Config``, its ``_base_`` resolved.

    Raises:
        UserError: a missing file or base, invalid syntax, or a file that is not a mapping.
    """
    from mmengine.config import Config

    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist: check the path")
    try:
        cfg = Config.fromfile(str(path)).to_dict()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"config file {path}{where} is not valid YAML: fix its syntax") from None
    except SyntaxError as e:
        raise UserError(f"config file {path} line {e.lineno}: {e.msg}: fix its syntax") from None
    except Exception as e:  # mmengine raises FileNotFoundError, KeyError, TypeError... for bad bases
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"config file {path} cannot be read ({first}): fix the file or its _base_") from None
    return cfg


def _bases(path: Path) -> list[Path]:
    """The files ``path`` names in ``_base_`` (read as text: YAML/JSON or a Python literal; else none)."""
    try:
        text = path.read_text()
        if path.suffix == ".py":
            nodes = [n.value for n in ast.parse(text).body if isinstance(n, ast.Assign)
                     and any(isinstance(t, ast.Name) and t.id == "_base_" for t in n.targets)]
            base = ast.literal_eval(nodes[-1]) if nodes else None
        else:
            raw = yaml.safe_load(text)
            base = raw.get("_base_") if isinstance(raw, dict) else None
    except (OSError, SyntaxError, ValueError, yaml.YAMLError):  # load_file has already named a broken file
        return []
    base = [base] if isinstance(base, str) else list(base or [])
    return [(path.parent / b).resolve() for b in base]


def variant_of(path: Path) -> tuple[str, str] | None:
    """``(kind, name)`` when ``path`` inherits (through ``_base_``) the default file of a method or task."""
    from benchmark.registry import METHODS, TASKS

    todo, seen = [Path(path).resolve()], set()
    while todo:
        p = todo.pop(0)
        if p in seen or not p.is_file():
            continue
        seen.add(p)
        for kind, reg in (("method", METHODS), ("task", TASKS)):
            if p != Path(path).resolve() and p.parent == CONFIG_DIR / f"{kind}s" and p.stem in reg.names():
                return kind, p.stem
        todo += _bases(p)
    return None


def load_overrides(path: Path) -> dict[str, dict[str, Any]]:
    """A ``--config`` file as ``section -> {key: value}``.

    Either a map of sections (method, backbone or task names), or a variant file that inherits one
    default file with ``_base_`` (``_base_: ./cosettle.yaml`` then ``epochs: 1``): its section is the
    inherited default's name, and its overrides are the keys whose value differs from that default.
    """
    cfg = load_file(path)
    parent = variant_of(path)
    if parent is not None:
        kind, name = parent
        base = defaults(kind, name)
        return {name: {k: v for k, v in cfg.items() if k not in base or base[k] != v}}
    if not all(isinstance(v, dict) for v in cfg.values()):
        raise UserError(f"config file {path} must map sections (method, backbone or task names) to key: value maps, "
                        "or inherit a default with _base_ (e.g. _base_: configs/methods/cosettle.yaml)")
    return cfg


def _signature_defaults(factory: Any) -> dict[str, Any]:
    """A backbone's options: its keyword defaults other than ``weights``."""
    params = inspect.signature(factory).parameters.values()
    out = {p.name: p.default for p in params if p.name != "weights" and p.default is not p.empty
           and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    variant = getattr(factory, "option_defaults", {}) or {}  # a variant's own defaults of its family's options
    return {**out, **{k: v for k, v in variant.items() if k in out}}


def defaults(kind: str, name: str, cls: Any = None) -> dict[str, Any]:
    """Defaults of a method/task (its YAML file, else ``default_config``) or a backbone (its keywords)."""
    if kind == "backbone":
        return _signature_defaults(cls) if cls is not None else {}
    path = CONFIG_DIR / f"{kind}s" / f"{name}.yaml"
    if path.is_file():
        return copy.deepcopy(_default_file(str(path), path.stat().st_mtime_ns))
    return dict(getattr(cls, "default_config", {}) or {})


@lru_cache(maxsize=None)
def _default_file(path: str, mtime_ns: int) -> dict[str, Any]:
    """A default file, parsed once per process and version (mmengine takes ~20 ms a file; a sweep
    resolves every task of every job)."""
    return load_file(Path(path))


def schema(kind: str, name: str, cls: Any = None) -> Any:
    """The pydantic model that types ``kind`` ``name``'s config, or None (type-by-default checks only).

    Looked up in order: ``cls.Config``, :data:`benchmark.schemas.SCHEMAS`, and for a backbone a model
    built from its keyword annotations (``out_stride: Literal[16, 32] = 16``).
    """
    from pydantic import BaseModel, ConfigDict, create_model

    declared = getattr(cls, "Config", None)
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        return declared
    from benchmark.schemas import SCHEMAS

    if (kind, name) in SCHEMAS:
        return SCHEMAS[(kind, name)]
    if kind != "backbone" or cls is None:
        return None
    init = cls.__init__ if isinstance(cls, type) else cls
    hints = typing.get_type_hints(init, include_extras=True)
    fields = {k: (hints.get(k, Any), v) for k, v in _signature_defaults(cls).items()}
    strict = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    return create_model(f"{name}_options", __config__=strict, **fields)


def validate(model: Any, cfg: dict[str, Any], where: str) -> dict[str, Any]:
    """``cfg`` checked by pydantic ``model`` and returned with its typed values; else one ``UserError``."""
    from pydantic import ValidationError

    try:
        return model.model_validate(cfg).model_dump()
    except ValidationError as e:
        errs = e.errors()
        err, more = errs[0], f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        msg = msg[:1].lower() + msg[1:]
        if not err["loc"]:  # a check across keys (warm-up shorter than training)
            raise UserError(f"{where}: {msg}{more}; fix the values") from None
        key = ".".join(str(part) for part in err["loc"])
        raise UserError(f"{where}: {key}={err.get('input')!r} is refused: {msg}{more}; fix the value") from None


def configure(kind: str, name: str, cls: Any, override: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of ``kind`` ``name`` merged with ``override`` and validated: the config a run uses.

    Raises:
        UserError: an unknown key (with its closest valid key), a wrong type or an out-of-range value.
    """
    where = f"{kind} {name}"
    merged = merge(defaults(kind, name, cls), override or {}, where)
    model = schema(kind, name, cls)
    return validate(model, merged, where) if model is not None else merged


def _check_type(where: str, key: str, default: Any, value: Any) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UserError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (int, float, str)) and not isinstance(value, type(default)):
        raise UserError(
            f"{where}: {key} must be a {type(default).__name__} (default {default!r}), got {value!r}"
        )
    if isinstance(default, list) and not isinstance(value, list):
        raise UserError(f"{where}: {key} must be a list (default {default!r}), got {value!r}")
    return value


def merge(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    """``base`` updated with ``override``; unknown keys and wrong types raise ``UserError``."""
    out = dict(base)
    for key, value in (override or {}).items():
        if key not in base:
            raise UserError(
                f"{where}: unknown key {key!r}; valid keys: {', '.join(sorted(base)) or '(none)'}"
                + (f" ({suggest(key, set(base)).strip()})" if suggest(key, set(base)) else "")
            )
        if isinstance(base[key], dict) and isinstance(value, dict):
            out[key] = merge(base[key], value, f"{where}.{key}")
        else:
            out[key] = _check_type(where, key, base[key], value)
    return out


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["cosettle.epochs=1", "davis.topk=5"]`` → ``{"cosettle": {"epochs": 1}, "davis": {"topk": 5}}``.

    Values are parsed as YAML scalars, so ``1`` is an int, ``1e-3`` a float, ``true`` a bool.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, eq, raw = item.partition("=")
        section, dot, sub = key.partition(".")
        if not eq or not dot or not sub:
            raise UserError(f"--set {item!r} must look like SECTION.KEY=VALUE, e.g. cosettle.epochs=1")
        value = yaml.safe_load(raw)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(raw)
            except ValueError:
                pass
        node = out.setdefault(section, {})
        for part in sub.split(".")[:-1]:
            node = node.setdefault(part, {})
        node[sub.split(".")[-1]] = value
    return out


def config_hash(obj: Any) -> str:
    """Stable short hash of a JSON-able config."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
