"""The house's rules hold: no import cycle, boundaries between packages, light commands.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) so that ``lint-imports``
checks the same thing from a shell; this test makes the suite fail too. Two rules
import-linter does not state are checked here: no strongly connected group of modules
at all (function-level imports included), and no module importing its own package's
``__init__`` (which imports the module back at run time).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "separation", "storage")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every group of two or more modules that import each other (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_module_takes_part_in_an_import_cycle():
    graph = grimp.build_graph(*PACKAGES)
    assert len(graph.modules) > 50  # the packages were found, not an empty graph
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    package = tmp_path / "ring"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from ring import b\n")
    (package / "b.py").write_text("from ring import c\n")
    (package / "c.py").write_text("import ring.a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _cycles(grimp.build_graph("ring", cache_dir=None)) == [["ring.a", "ring.b", "ring.c"]]


def _is_submodule(package: str, name: str) -> bool:
    folder = ROOT.joinpath(*package.split("."))
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


def _imports_of_own_package(path: Path, module: str) -> list[str]:
    """Names ``module`` takes from an ancestor package's ``__init__`` (not its submodules)."""
    ancestors = {".".join(module.split(".")[:depth]) for depth in range(1, module.count(".") + 1)}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in ancestors:
            found += [
                f"{module}:{node.lineno} from {node.module} import {alias.name}"
                for alias in node.names
                if not _is_submodule(node.module, alias.name)
            ]
    return found


def test_no_module_imports_its_own_package_init():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "__init__.py" or "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            offenders += _imports_of_own_package(path, module)
    assert offenders == []


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_import_contracts_are_kept():
    completed = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "0 broken" in completed.stdout


# Declared because SQLAlchemy loads them by the URL's driver name, never imported by us.
_LOADED_BY_NAME = {"aiosqlite", "asyncpg"}
# Optional features: their packages are declared as extras, imported only where used.
_FEATURE_EXTRAS = ("postgres", "distributed")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_distributions() -> dict[str, str]:
    """Third-party distribution -> a module of ours that imports it."""
    owners = importlib.metadata.packages_distributions()
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in PACKAGES:
                        continue
                    for distribution in owners.get(top, [top]):
                        if distribution.startswith("types-"):
                            continue  # type stubs, imported for the type checker only
                        found.setdefault(_normalized(distribution), str(path.relative_to(ROOT)))
    return found


def _names(specs: list[str]) -> set[str]:
    return {_normalized(re.split(r"[<>=!~\[ ;]", spec)[0]) for spec in specs}


def test_declared_dependencies_are_what_the_code_imports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = _names(project["dependencies"])
    extras = set().union(*(_names(project["optional-dependencies"][e]) for e in _FEATURE_EXTRAS))
    imported = _imported_distributions()
    undeclared = {name: where for name, where in imported.items() if name not in required | extras}
    assert undeclared == {}
    assert (required | extras) - set(imported) - _LOADED_BY_NAME == set()
