"""Every product module stays short enough to read in one sitting, every function on a screen.

The house's rule: no module in ``bot/``, ``separation/`` or ``storage/`` over 400 lines,
no function or method over 60 lines (``end_lineno - lineno + 1`` of its ``def``, its
decorators left out, nested functions counted on their own and inside their parent).
Alembic's revision files in ``storage/migrations/versions`` are history, not design, and
are left out. A failure names every offender with its size, so splitting one does not
hide the next.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "separation", "storage")
EXCLUDED = (Path("storage/migrations/versions"),)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _product_modules(root: Path) -> list[Path]:
    """The ``.py`` files of the product packages under ``root``, excluded folders left out."""
    modules = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            if not any(relative.is_relative_to(excluded) for excluded in EXCLUDED):
                modules.append(path)
    return modules


def oversized(
    root: Path,
    max_module_lines: int = MAX_MODULE_LINES,
    max_function_lines: int = MAX_FUNCTION_LINES,
) -> list[str]:
    """Every product module over ``max_module_lines`` lines (``"path: N lines"``) and every
    function or method over ``max_function_lines`` (``"path:LINE name(): N lines"``)."""
    found = []
    for path in _product_modules(root):
        relative = path.relative_to(root).as_posix()
        source = path.read_text()
        lines = len(source.splitlines())
        if lines > max_module_lines:
            found.append(f"{relative}: {lines} lines (max {max_module_lines})")
        tree = ast.parse(source, filename=relative)
        functions = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        for node in sorted(functions, key=lambda n: n.lineno):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > max_function_lines:
                found.append(
                    f"{relative}:{node.lineno} {node.name}(): {length} lines"
                    f" (max {max_function_lines})"
                )
    return found


def test_no_product_module_or_function_is_over_its_size():
    assert len(_product_modules(ROOT)) > 50  # the packages were found
    offenders = oversized(ROOT)
    assert not offenders, f"{len(offenders)} over their size:\n" + "\n".join(offenders)


def test_the_size_check_names_each_offender_with_its_size(tmp_path):
    package = tmp_path / "separation"
    package.mkdir()
    (package / "__init__.py").write_text("")
    long_function = "def long():\n" + "    x = 1\n" * 6 + "\n"
    short_method = "class Small:\n    async def short(self):\n        return 1\n"
    (package / "big.py").write_text("# filler\n" * 10 + long_function + short_method)
    (package / "small.py").write_text(short_method)
    versions = tmp_path / "storage" / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "0001_history.py").write_text("# filler\n" * 50 + long_function)
    assert oversized(tmp_path, max_module_lines=15, max_function_lines=5) == [
        "separation/big.py: 21 lines (max 15)",
        "separation/big.py:11 long(): 7 lines (max 5)",
    ]
    assert oversized(tmp_path, max_module_lines=21, max_function_lines=7) == []
