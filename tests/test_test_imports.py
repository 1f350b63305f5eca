"""No test module reaches into another: what tests share lives in ``tests/support``.

A test module or conftest that imports a conftest or a ``test_*`` module ties the two
together (moving, renaming or deleting one breaks the other, and a fixture imported by
name is registered twice); a helper module lying in a test folder is found by nobody
who looks in ``tests/support``. So any module under ``tests/`` may import, from the tests
themselves, only ``tests.support``; fixtures reach tests by name through conftest files.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _imported_modules(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The dotted names ``node`` may import (for ``from M import N``: ``M`` and ``M.N``,
    since ``N`` may be a module), relative imports resolved against ``package``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".") if package else []
        parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
        base = ".".join([*parts, *([base] if base else [])])
    return [base, *(f"{base}.{alias.name}" if base else alias.name for alias in node.names)]


CONFTEST = "imports a conftest module (fixtures come by name; helpers from tests.support)"
TEST_MODULE = "imports a test module (move what it shares to tests.support)"
OUTSIDE_SUPPORT = "imports a test helper outside tests.support"


def _why_forbidden(candidates: list[str]) -> str | None:
    """Why a module under tests/ may not import any of ``candidates`` (None: it may).
    Only the tests' own modules count: ``tests.*``, or a bare ``conftest``/``test_*``
    (pytest puts a folder without ``__init__.py`` on ``sys.path``)."""
    own = [m for m in candidates if m.partition(".")[0] == "tests" or "." not in m]
    lasts = [m.rsplit(".", 1)[-1] for m in own]
    if "conftest" in lasts:
        return CONFTEST
    if any(last.startswith("test_") for last in lasts):
        return TEST_MODULE
    if any(m.startswith("tests.") and m.split(".")[1] != "support" for m in own):
        return OUTSIDE_SUPPORT
    return None


def forbidden_imports(root: Path) -> list[str]:
    """Every import in the ``.py`` files under ``root`` (a ``tests`` folder) of a conftest,
    a ``test_*`` module or a tests module outside ``tests.support``, as
    ``"path:line: import ... (why)"``, function-level imports included."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent)
        package = ".".join(relative.parent.parts)
        tree = ast.parse(path.read_text(), filename=str(path))
        imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
        for node in sorted(imports, key=lambda n: n.lineno):
            why = _why_forbidden(_imported_modules(node, package))
            if why:
                found.append(f"{relative}:{node.lineno}: {ast.unparse(node)} ({why})")
    return found


def test_no_test_module_or_conftest_imports_another_test_module():
    found = forbidden_imports(TESTS)
    assert not found, f"{len(found)} imports between tests:\n" + "\n".join(found)


def test_the_checker_names_each_forbidden_import(tmp_path):
    tests = tmp_path / "tests"
    (tests / "support").mkdir(parents=True)
    (tests / "chat").mkdir()
    (tests / "__init__.py").write_text("")
    (tests / "support" / "__init__.py").write_text("")
    (tests / "support" / "chat.py").write_text("import os\n")
    (tests / "conftest.py").write_text("from tests.support.chat import os\n")
    (tests / "helpers.py").write_text("")
    (tests / "chat" / "conftest.py").write_text("from tests.conftest import x\n")
    (tests / "chat" / "test_a.py").write_text(
        "from tests.support import chat\n"
        "from tests.chat.test_b import helper\n"
        "def test_a():\n"
        "    from . import conftest\n"
        "import tests.helpers\n"
        "from .test_b import other\n"
    )
    (tests / "chat" / "test_b.py").write_text("from conftest import y\n")
    assert forbidden_imports(tests) == [
        f"tests/chat/conftest.py:1: from tests.conftest import x ({CONFTEST})",
        f"tests/chat/test_a.py:2: from tests.chat.test_b import helper ({TEST_MODULE})",
        f"tests/chat/test_a.py:4: from . import conftest ({CONFTEST})",
        f"tests/chat/test_a.py:5: import tests.helpers ({OUTSIDE_SUPPORT})",
        f"tests/chat/test_a.py:6: from .test_b import other ({TEST_MODULE})",
        f"tests/chat/test_b.py:1: from conftest import y ({CONFTEST})",
    ]
