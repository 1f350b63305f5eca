"""The architecture page names every room and every module, so its map cannot go stale.

Issue 22 found the README's old layout map leaving out 12 modules (the largest one
among them): a map nobody checks drifts. This test reads ``docs/pages/architecture.md``
and fails, naming what is missing, when a room (a package folder) or a module of
``bot/``, ``separation/`` or ``storage/`` is added without a word there.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "pages" / "architecture.md"
PACKAGES = ("bot", "separation", "storage")
LEFT_OUT = ("storage/migrations",)
"""Alembic's revisions are one history, described as such, not module by module."""


def _product_modules(root: Path) -> list[Path]:
    return sorted(
        path.relative_to(root)
        for package in PACKAGES
        for path in (root / package).rglob("*.py")
        if path.name != "__init__.py"
        and not any(path.relative_to(root).as_posix().startswith(p) for p in LEFT_OUT)
    )


def undescribed(root: Path, page: str) -> list[str]:
    """Rooms and modules under ``root`` that ``page`` does not name.

    A module counts as named when its file name appears in backquotes (``flow.py``);
    a sub-room (a package below a top-level package's own rooms) when its folder name
    does (``blobs/``), and a top-level room when its path does (``bot/chat/telegram/``).
    """
    missing: list[str] = []
    for module in _product_modules(root):
        if f"`{module.name}`" not in page:
            missing.append(module.as_posix())
    rooms = {module.parent for module in _product_modules(root) if len(module.parts) > 2}
    for room in sorted(rooms):
        as_path, as_folder = f"`{room.as_posix()}/`", f"`{room.name}/`"
        if as_path not in page and as_folder not in page:
            missing.append(room.as_posix() + "/")
    return missing


def test_the_architecture_page_names_every_room_and_module() -> None:
    missing = undescribed(ROOT, PAGE.read_text())
    assert not missing, "docs/pages/architecture.md does not describe: " + ", ".join(missing)


def test_the_check_finds_a_module_and_a_room_left_out(tmp_path: Path) -> None:
    (tmp_path / "bot" / "newroom").mkdir(parents=True)
    (tmp_path / "bot" / "old.py").write_text("")
    (tmp_path / "bot" / "newroom" / "thing.py").write_text("")
    (tmp_path / "separation").mkdir()
    (tmp_path / "storage" / "migrations").mkdir(parents=True)
    (tmp_path / "storage" / "migrations" / "env.py").write_text("")
    assert undescribed(tmp_path, "`old.py`") == ["bot/newroom/thing.py", "bot/newroom/"]
    assert undescribed(tmp_path, "`old.py` `thing.py` `bot/newroom/`") == []
