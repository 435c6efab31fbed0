"""Configuration: YAML defaults under ``configs/``, a user file, then ``--set`` overrides.

Every default lives in one YAML file per method (``configs/methods/<name>.yaml``) and per task
(``configs/tasks/<name>.yaml``), plus ``backbones.yaml``, ``datasets.yaml`` and ``suites.yaml``, so a
reader finds every constant in one place. Overrides are validated against the defaults: an unknown
key or a value of the wrong type is a one-line :class:`UserError`, never a silently ignored typo.
The resolved config is hashed and stored in every result, so a changed constant means a new result.
"""
from __future__ import annotations

import difflib
import hashlib
import json
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


def defaults(kind: str, name: str, cls: Any = None) -> dict[str, Any]:
    """Defaults of a method/task/backbone: its YAML file, else the class's ``default_config``."""
    if kind == "backbone":
        return dict(_shared("backbones").get(name, {}) or {})
    path = CONFIG_DIR / f"{kind}s" / f"{name}.yaml"
    if path.is_file():
        return read_yaml(path)
    return dict(getattr(cls, "default_config", {}) or {})


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
