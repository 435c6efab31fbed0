"""Name → class registries for methods, backbones and tasks.

Why our own and not ``mmengine.Registry``: mmengine imports every registered module eagerly (so
``bench list`` would import torch and timm, seconds of start-up), and an unknown name fails with
"X is not in the registry" without suggestions. Here every built-in entry is a lazy
``"module:attribute"`` string, imported only when that entry is used, and an unknown name fails with
a :class:`~benchmark.errors.UserError` carrying difflib's "did you mean" (as lm-evaluation-harness
does). Built-in backbones are not listed here at all: each family file registers its variants with
``@BACKBONES.register("name")`` (timm's ``@register_model``), and :func:`scan` finds those decorators
by parsing the files with :mod:`ast`, so the list costs no import and cannot drift from the code.
Third-party entries arrive through Python entry points (group ``i2v_bench.methods`` etc.) or
through a plugin file loaded with ``--plugin path.py`` that calls ``METHODS.register``.

A name is registered once: a plugin (a file or an entry point) reusing a built-in or already
registered name is refused unless it says ``override=True`` (otherwise a plugin called ``frozen``
would silently become the baseline every Δ column is measured against).
"""
from __future__ import annotations

import ast
import difflib
import hashlib
import importlib
import importlib.util
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from benchmark.errors import UserError


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def scan(package: str, folder: Path, variable: str) -> dict[str, tuple[str, str]]:
    """``name -> ("module:attr", summary)`` for every top-level ``@<variable>.register(...)`` in ``folder``.

    Reads the files as text (no import): ``bench list`` answers without torch, and the listing is
    the decorators themselves, so it cannot drift from the code. The name is the decorator's first
    argument (else the decorated name); the summary its second (``summary=``), else the docstring's
    first line.
    """
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        for node in ast.parse(path.read_text(), str(path)).body:
            if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                continue
            for deco in node.decorator_list:
                func = deco.func if isinstance(deco, ast.Call) else deco
                if not (isinstance(func, ast.Attribute) and func.attr == "register"
                        and isinstance(func.value, ast.Name) and func.value.id == variable):
                    continue
                args = [a.value for a in getattr(deco, "args", []) if isinstance(a, ast.Constant)]
                kw = {k.arg: k.value.value for k in getattr(deco, "keywords", []) if isinstance(k.value, ast.Constant)}
                name = kw.get("name") or (args[0] if args else node.name)
                summary = kw.get("summary") or (args[1] if len(args) > 1 else _first_line(ast.get_docstring(node)))
                out[name] = (f"{package}.{path.stem}:{node.name}", summary)
    return out


class Registry:
    """A registry of one kind of thing (method, backbone or task).

    Args:
        kind: what the entries are, used in messages ("method").
        group: the entry-point group scanned for third-party entries.
        lazy: built-in entries, ``name -> ("module:attr", one-line summary)``.
        scan: ``(package, folder, variable)`` whose files register built-ins with ``@variable.register``
            (see :func:`scan`), read on first use.
    """

    def __init__(self, kind: str, group: str, lazy: dict[str, tuple[str, str]],
                 scan: tuple[str, Path, str] | None = None):
        self.kind = kind
        self.group = group
        self._lazy = dict(lazy)
        self._scan = scan
        self._loaded: dict[str, Any] = {}
        self._overridden: dict[str, str] = {}  # name -> target of the entry an override replaced
        self._discovered = False

    def register(self, name: str | None = None, summary: str = "", override: bool = False) -> Callable[[Any], Any]:
        """Decorator registering a class or factory under ``name`` (default: its own name).

        Sets ``cls.name`` on a class. A name already taken (a built-in, an entry point or an earlier
        registration) is refused unless ``override=True``.
        """

        def deco(obj: Any) -> Any:
            key = name or obj.__name__
            self._discover()
            target = f"{obj.__module__}:{obj.__qualname__}"
            if self._overridden.get(key) == target:  # the replaced built-in defining itself later: keep the override
                return obj
            existing, lazy = self._loaded.get(key), self._lazy.get(key)
            if existing is not None and existing is obj:
                return obj
            taken = existing is not None or (lazy is not None and lazy[0] != target)
            if taken and not override:
                where = lazy[0] if lazy else f"{existing.__module__}:{existing.__qualname__}"
                raise UserError(
                    f"{self.kind} {key!r} is already registered ({where}): give yours another name, or pass "
                    f"override=True to {self.kind.upper()}S.register to replace it"
                )
            if taken and lazy is not None:
                self._overridden[key] = lazy[0]
            self._loaded[key] = obj
            self._lazy[key] = (target, summary or _first_line(obj.__doc__))
            if isinstance(obj, type):
                obj.name = key
            return obj

        return deco

    def _discover(self) -> None:
        """Add the scanned built-ins and the entry points (once, without importing either)."""
        if self._discovered:
            return
        self._discovered = True
        if self._scan is not None:
            for key, entry in scan(*self._scan).items():
                self._lazy.setdefault(key, entry)
        before = dict(self._lazy), dict(self._loaded), dict(self._overridden)
        try:
            for ep in entry_points(group=self.group):
                if ep.name in self._lazy:
                    self._clashing_entry_point(ep)
                else:
                    self._lazy[ep.name] = (ep.value, f"(plugin {ep.dist.name if ep.dist else ep.value})")
        except UserError:  # nothing of the refused package stays registered; refused again on the next use
            self._lazy, self._loaded, self._overridden = before
            self._discovered = False
            raise

    def _clashing_entry_point(self, ep: Any) -> None:
        """An entry point reusing a taken name (a built-in, or another package's entry point).

        Accepted only where importing it registers the object it names with ``override=True`` (its
        module runs ``@METHODS.register(name, override=True)``), exactly as a ``--plugin`` file must say so;
        otherwise one line naming the entry point, its package and the fix. Only a clashing entry
        point is imported here: the others stay lazy.
        """
        taken = self._lazy[ep.name][0]
        if taken == ep.value:  # the same object listed twice is no clash
            return
        where = f"entry point {ep.name} = {ep.value} (group {self.group}, package {ep.dist.name if ep.dist else '?'})"
        prior = self._loaded.get(ep.name)
        try:
            obj = ep.load()
        except UserError as e:  # its own decorator refused the name (no override=True)
            raise UserError(f"{where}: {e}") from None
        except Exception as e:  # noqa: BLE001 - a broken third-party package is named, not a traceback
            raise UserError(f"{where} raised {type(e).__name__} on import: "
                            f"{_first_line(str(e)) or 'no message'}: fix or uninstall that package") from None
        now = self._loaded.get(ep.name)
        if ep.name not in self._overridden or now is prior or (ep.attr and now is not obj):
            raise UserError(f"{where} reuses the {self.kind} name {ep.name!r} of {taken}: rename it, or register it "
                            f"with {self.kind.upper()}S.register({ep.name!r}, override=True) in its module")

    def names(self) -> list[str]:
        """All registered names, sorted, without importing any of them."""
        self._discover()
        return sorted(set(self._lazy) | set(self._loaded))

    def summary(self, name: str) -> str:
        self._discover()
        return self._lazy.get(name, ("", ""))[1]

    def check(self, name: str) -> None:
        """Raise a one-line ``UserError`` with suggestions if ``name`` is unknown."""
        known = self.names()
        if name in known:
            return
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise UserError(
            f"unknown {self.kind} {name!r}: {hint}available: {', '.join(known)} "
            f"(list them with `bench list {self.kind}s`)"
        )

    def get(self, name: str) -> Any:
        """Return the class or factory for ``name``, importing its module on first use."""
        if name in self._loaded:
            return self._loaded[name]
        self.check(name)
        module_name, _, attr = self._lazy[name][0].partition(":")
        obj: Any = importlib.import_module(module_name)  # a decorated built-in registers itself here
        if name in self._loaded:
            return self._loaded[name]
        for part in attr.split("."):
            obj = getattr(obj, part)
        if isinstance(obj, type):
            obj.name = name
        self._loaded[name] = obj
        return obj


def _plugin_line(path: Path, exc: BaseException) -> str:
    """The line of ``path`` where ``exc`` was raised, from its traceback ("" if not in that file)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    return f" line {frames[-1].lineno}" if frames else ""


def load_plugin(path: str | Path) -> None:
    """Import a user's Python file so that the registrations it makes take effect.

    The file registers its classes itself, e.g. ``@METHODS.register("mine")``; nothing in the
    package needs editing. Any error while importing it (syntax, a missing import, a name clash) is
    one line naming the file; the half-imported module is forgotten, so a fixed file loads next time.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"plugin file {path} does not exist: pass the path of a .py file that registers a method")
    mod_name = f"i2v_bench_plugin_{path.stem}_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]}"
    if mod_name in sys.modules:  # loading a file twice would register its entries twice
        return
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"plugin file {path} is not an importable Python file: give it a .py suffix")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(mod_name, None)
        raise UserError(f"plugin file {path} line {e.lineno}: {e.msg}: fix its syntax") from None
    except UserError as e:
        sys.modules.pop(mod_name, None)
        raise UserError(f"plugin file {path}{_plugin_line(path, e)}: {e}") from None
    except SystemExit as e:  # a plugin may not end the process on import (a script's `sys.exit()` left in)
        sys.modules.pop(mod_name, None)
        raise UserError(f"plugin file {path}{_plugin_line(path, e)} called sys.exit({e.code!r}) on import: "
                        "a plugin registers classes; move the script code under `if __name__ == \"__main__\":`") from None
    except Exception as e:  # whatever the user's code raises at import is theirs to fix: name file and line
        sys.modules.pop(mod_name, None)
        raise UserError(f"plugin file {path}{_plugin_line(path, e)} raised {type(e).__name__}: "
                        f"{_first_line(str(e)) or 'no message'}: fix the file") from None


_ROOT = Path(__file__).resolve().parent.parent  # the repository (methods/ and tasks/ beside benchmark/)

# built-in methods: the @METHODS.register decorators in methods/<name>.py, scanned (one file per method)
METHODS = Registry("method", "i2v_bench.methods", {}, scan=("methods", _ROOT / "methods", "METHODS"))

# built-in backbones: the @BACKBONES.register decorators in benchmark/backbones/<family>.py, scanned
BACKBONES = Registry("backbone", "i2v_bench.backbones", {},
                     scan=("benchmark.backbones", Path(__file__).resolve().parent / "backbones", "BACKBONES"))

# built-in tasks: the @TASKS.register decorators in tasks/<family>.py, scanned (one file per task family)
TASKS = Registry("task", "i2v_bench.tasks", {}, scan=("tasks", _ROOT / "tasks", "TASKS"))
