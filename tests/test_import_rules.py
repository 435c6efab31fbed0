"""The one-way import rules of ``DESIGN.md``, checked on the source tree.

Data flows one way (reader → sampler → backbone → method → task → metrics), so the packages may only
import in that direction: a method never knows which task consumes it, a task never knows which method
produced its features, the core reaches methods and tasks only through the registry's lazy
``"module:attr"`` names, and nothing imports the CLI (it is the outermost layer). Every ``import``
statement counts, including those inside functions.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _files(package: str, exclude: tuple[str, ...] = ()) -> list[Path]:
    return [p for p in sorted((ROOT / package).rglob("*.py"))
            if not any(p.relative_to(ROOT).as_posix().startswith(e) for e in exclude)]


RULES = [
    # (package, excluded sub-paths, forbidden top-level modules, why)
    ("methods", (), ("tasks", "benchmark.cli"), "a method never knows which task consumes its features"),
    ("tasks", (), ("methods", "benchmark.cli"), "a task never knows which method produced its features"),
    ("benchmark", ("benchmark/cli.py", "benchmark/perf/"), ("methods", "tasks", "benchmark.cli"),
     "the core reaches methods and tasks only through the registry's lazy names"),
    ("benchmark/perf", (), ("benchmark.cli",), "perf scripts measure the library, not the CLI"),
]


@pytest.mark.parametrize("package,exclude,forbidden,why", RULES, ids=[r[0] for r in RULES])
def test_one_way_imports(package, exclude, forbidden, why):
    bad = []
    for path in _files(package, exclude):
        for mod in _imports(path):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, f"{why}:\n" + "\n".join(bad)


def test_the_rules_see_a_violation(tmp_path):
    """The checker itself finds an import inside a function body."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from tasks.davis import Davis\n")
    assert "tasks.davis" in _imports(f)
