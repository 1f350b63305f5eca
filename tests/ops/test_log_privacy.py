"""Debug logging (-v) never writes what libraries log about users at DEBUG.

python-telegram-bot logs whole updates, aiosqlite every call with its SQL parameters,
discord.py gateway payloads, SQLAlchemy statements with parameters at INFO: display names
and file names all. Our own packages keep their debug lines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.ops.logging_setup import configure_logging
from storage import Store

NAME = "Zelda Quux"
FILE_NAME = "secret-song.mp3"
LIBRARIES = ("telegram.ext.Application", "aiosqlite", "sqlalchemy.engine.Engine", "discord.gateway")
UNLISTED = "somelib"  # a dependency nobody thought of


@pytest.fixture
def library_levels() -> Iterator[None]:
    """Put back the levels of the library loggers a test lowers, even ones it created."""
    names = (*LIBRARIES, UNLISTED, "sqlalchemy.engine")
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def _lower_levels(names: tuple[str, ...]) -> None:
    """What a library, or an ``echo=True`` engine, may do after we configured logging."""
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)


@pytest.mark.parametrize("library_lowers_its_level", [False, True], ids=["as-set", "lowered"])
def test_library_debug_records_are_dropped_and_ours_kept(
    capsys: pytest.CaptureFixture[str], library_levels: None, library_lowers_its_level: bool
) -> None:
    configure_logging("DEBUG")  # after capsys took stderr: the handler writes to it
    if library_lowers_its_level:
        _lower_levels((*LIBRARIES, UNLISTED))
    for name in (*LIBRARIES, UNLISTED):
        logging.getLogger(name).debug("update from %s: document %s", NAME, FILE_NAME)
    logging.getLogger("sqlalchemy.engine.Engine").info("INSERT INTO users [%s]", NAME)
    logging.getLogger("bot.chat.conversation.flow").debug("job j-1 queued for telegram:7")
    logging.getLogger("separation.pool").debug("batch of 2 songs ready")
    logging.getLogger("telegram.ext.Application").info("Application started")
    logging.getLogger(UNLISTED).warning("connection lost, retrying")

    log = capsys.readouterr().err
    assert NAME not in log and FILE_NAME not in log
    assert "job j-1 queued for telegram:7" in log
    assert "batch of 2 songs ready" in log
    assert "INFO telegram.ext.Application: Application started" in log
    assert "WARNING somelib: connection lost, retrying" in log


def test_at_info_our_debug_lines_are_dropped_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    logging.getLogger("bot.chat.conversation.flow").debug("job j-1 queued")
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/...")
    logging.getLogger("bot.chat.conversation.flow").info("job j-1 done")
    log = capsys.readouterr().err
    assert "job j-1 queued" not in log and "HTTP Request" not in log
    assert "job j-1 done" in log


@pytest.mark.parametrize("library_lowers_its_level", [False, True], ids=["as-set", "lowered"])
async def test_the_store_does_not_leak_display_names_through_its_driver(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    library_levels: None,
    library_lowers_its_level: bool,
) -> None:
    configure_logging("DEBUG")
    if library_lowers_its_level:
        # Real aiosqlite DEBUG lines and SQLAlchemy's echo: statements with parameters.
        _lower_levels(("aiosqlite", "sqlalchemy.engine"))
    data_dir = tmp_path / "data"
    store = await Store.open(f"sqlite+aiosqlite:///{data_dir / 'karaoke.db'}", data_dir)
    try:
        await store.users.upsert("telegram", "7", NAME)
        assert (await store.users.get("telegram", "7")).display_name == NAME
    finally:
        await store.close()
    assert NAME not in capsys.readouterr().err
