"""The database and the data folders are private to the bot's account, whatever the umask.

On a shared host a 0644 ``karaoke.db`` or a 0755 ``uploads/`` would let every account
read users' names and music. The umask is the process's, so each test runs under umask 0
(nothing masked: the widest the defaults can get) and under the usual 022.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import Store
from storage.files import make_private_dirs


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _operator_folder(path: Path) -> Path:
    """A folder the operator made before the bot ran (0755 whatever the umask)."""
    path.mkdir()
    path.chmod(0o755)
    return path


async def test_a_new_database_its_journal_and_the_data_folders_are_private(
    tmp_path: Path, umask: int
) -> None:
    data_dir = tmp_path / "data"
    database = data_dir / "karaoke.db"
    store = await Store.open(_sqlite_url(database), data_dir)
    try:
        await store.users.upsert("telegram", "1", "Alice")
        # The pooled connection is still open, so SQLite's WAL-mode files exist now.
        companions = [Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert all(path.exists() for path in companions)
        assert {path.name: _mode(path) for path in [database, *companions]} == {
            "karaoke.db": 0o600,
            "karaoke.db-wal": 0o600,
            "karaoke.db-shm": 0o600,
        }
        folders = [data_dir, data_dir / "uploads"]
        assert {path.name: _mode(path) for path in folders} == {
            "data": 0o700,
            "uploads": 0o700,
        }
        assert not (data_dir / "results").exists()  # results live in the separation cache
    finally:
        await store.close()


async def test_folders_above_the_data_dir_are_private_when_created_and_left_alone_when_not(
    tmp_path: Path, umask: int
) -> None:
    srv = _operator_folder(tmp_path / "srv")
    data_dir = srv / "karaoke" / "data"
    database = srv / "karaoke" / "db" / "karaoke.db"
    store = await Store.open(_sqlite_url(database), data_dir)
    await store.close()
    assert _mode(srv) == 0o755
    created = [srv / "karaoke", srv / "karaoke" / "db", data_dir, data_dir / "uploads"]
    assert [_mode(path) for path in created] == [0o700] * 4
    assert _mode(database) == 0o600


async def test_an_existing_readable_database_is_made_private_and_says_so(
    tmp_path: Path, umask: int, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    database = data_dir / "karaoke.db"
    store = await Store.open(_sqlite_url(database), data_dir)
    await store.users.upsert("telegram", "1", "Alice")
    await store.close()
    database.chmod(0o644)  # as an older version, or SQLite itself, left it
    caplog.set_level(logging.INFO, logger="storage")

    store = await Store.open(_sqlite_url(database), data_dir)
    try:
        assert (await store.users.get("telegram", "1")).display_name == "Alice"
    finally:
        await store.close()
    assert _mode(database) == 0o600
    said = [record.getMessage() for record in caplog.records if str(database) in record.message]
    assert len(said) == 1 and "0644 -> 0600" in said[0]


async def test_existing_store_folders_are_tightened_but_the_data_dir_is_the_operators(
    tmp_path: Path, umask: int
) -> None:
    data_dir = _operator_folder(tmp_path / "data")
    uploads = _operator_folder(data_dir / "uploads")
    store = await Store.open(_sqlite_url(data_dir / "karaoke.db"), data_dir)
    await store.close()
    assert _mode(data_dir) == 0o755
    assert _mode(uploads) == 0o700


def test_a_strict_umask_cannot_leave_a_folder_the_bot_cannot_write(tmp_path: Path) -> None:
    previous = os.umask(0o277)  # mkdir(0o700) alone would give 0500
    try:
        created = make_private_dirs(tmp_path / "a" / "b")
    finally:
        os.umask(previous)
    assert created == [tmp_path / "a", tmp_path / "a" / "b"]
    assert [_mode(path) for path in created] == [0o700, 0o700]
    assert make_private_dirs(tmp_path / "a" / "b") == []
