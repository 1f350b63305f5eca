"""The engine set-up, migrations and the errors for databases that cannot be used."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from storage import DatabaseError, DatabaseOpenError, DataDirError, Store
from storage.db import open_database
from storage.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    include_name,
    upgrade,
)
from storage.models import Base, User


async def test_sqlite_is_set_up_for_concurrent_use(tmp_path: Path) -> None:
    database = open_database(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", busy_timeout_seconds=7)
    try:
        async with database.read() as session:
            pragmas = {
                name: await session.scalar(text(f"PRAGMA {name}"))
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
    finally:
        await database.close()
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 7000, "foreign_keys": 1}


async def test_sqlite_folder_is_created(tmp_path: Path) -> None:
    database = open_database(f"sqlite+aiosqlite:///{tmp_path / 'deep' / 'er' / 'k.db'}")
    try:
        await upgrade(database)
    finally:
        await database.close()
    assert (tmp_path / "deep" / "er" / "k.db").is_file()


async def test_migrations_build_exactly_the_models(backend, data_dir) -> None:
    store = await backend.open_store(data_dir)  # upgrades an empty database
    try:
        async with store._db.engine.connect() as connection:
            # procrastinate's tables (PostgreSQL) come from its SQL, not from the models.
            differences = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"include_name": include_name}),
                    Base.metadata,
                )
            )
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert differences == []
        assert {"users", "jobs", "usage", "alembic_version"} <= set(tables)
        assert await current_revision(store._db) == head_revision()
    finally:
        await store.close()


async def test_upgrade_is_idempotent(backend, data_dir) -> None:
    store = await backend.open_store(data_dir, migrate=False)
    try:
        assert await store.upgrade_schema() == (None, head_revision())
        assert await store.upgrade_schema() == (head_revision(), head_revision())
    finally:
        await store.close()


async def test_times_come_back_timezone_aware_in_utc(store) -> None:
    local = datetime(2025, 6, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    user = await store.users.upsert("telegram", "1", "Ann", now=local)
    assert user.first_seen == datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
    assert user.first_seen.utcoffset() == timedelta(0)
    assert (await store.users.get("telegram", "1")).last_seen == local


async def test_naive_times_are_refused(store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.users.upsert("telegram", "1", "Ann", now=datetime(2025, 1, 1))


async def test_foreign_keys_are_enforced(backend, data_dir) -> None:
    store = await backend.open_store(data_dir)
    try:
        with pytest.raises(DatabaseError, match=r"(?i)foreign key"):
            async with store._db.write() as session:
                await session.execute(
                    text(
                        "INSERT INTO usage (job_id, user_id, charged_at, songs, audio_seconds)"
                        " VALUES (999, 999, '2025-01-01 00:00:00', 1, 1.0)"
                    )
                )
    finally:
        await store.close()


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "karaoke.db"
    fake.write_bytes(b"this is a text file, not SQLite " * 100)
    with pytest.raises(DatabaseOpenError, match="file is not a database") as caught:
        await Store.open(f"sqlite+aiosqlite:///{fake}", tmp_path / "data")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not a url", "Could not parse"),
        ("nosuchdb+driver://host/db", "nosuchdb"),
        ("postgresql+asyncpg://postgres@127.0.0.1:1/test", "cannot open database"),
    ],
)
async def test_unusable_urls_are_clear_errors(tmp_path: Path, url: str, reason: str) -> None:
    with pytest.raises(DatabaseOpenError, match=reason) as caught:
        await Store.open(url, tmp_path / "data")
    assert "\n" not in str(caught.value)


async def test_passwords_are_not_shown_in_errors(tmp_path: Path) -> None:
    with pytest.raises(DatabaseOpenError) as caught:
        await Store.open("postgresql+asyncpg://bob:hunter2@127.0.0.1:1/x", tmp_path / "data")
    assert "hunter2" not in str(caught.value)


async def test_a_data_dir_below_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataDirError, match="not usable") as caught:
        await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", blocker / "data")
    assert caught.value.path.is_relative_to(blocker)


async def test_a_sqlite_file_below_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataDirError):
        await Store.open(f"sqlite+aiosqlite:///{blocker / 'db' / 'k.db'}", tmp_path / "data")


async def test_a_read_only_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o555)
    try:
        if os.access(data_dir, os.W_OK):
            pytest.skip("this user (root?) can write to a read-only folder")
        with pytest.raises(DataDirError, match="Permission denied"):
            await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", data_dir)
    finally:
        data_dir.chmod(0o755)


async def test_records_survive_reopening(backend, data_dir) -> None:
    store = await backend.open_store(data_dir)
    await store.users.upsert("discord", "77", "Bo")
    await store.close()
    store = await backend.open_store(data_dir)
    try:
        assert (await store.users.get("discord", "77")).display_name == "Bo"
    finally:
        await store.close()


def test_model_tables_have_named_constraints() -> None:
    # Named constraints are what lets later migrations alter them on SQLite too.
    names = {constraint.name for constraint in User.__table__.constraints}
    assert "uq_users_platform_platform_user_id" in names
    assert "ck_users_platform" in names


async def test_a_schema_from_a_newer_version_is_a_clear_error(backend, data_dir) -> None:
    store = await backend.open_store(data_dir)
    async with store._db.write() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    await store.close()
    with pytest.raises(DatabaseOpenError, match="newer version") as caught:
        await backend.open_store(data_dir)
    assert "from_the_future" in str(caught.value)


def test_env_py_runs_on_an_async_engine_given_only_a_url(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")

    async def revision() -> str | None:
        database = open_database(url)
        try:
            return await current_revision(database)
        finally:
            await database.close()

    assert asyncio.run(revision()) == head_revision()


async def test_ping_answers_while_the_database_is_reachable(store):
    assert await store.ping() is True


async def test_ping_is_false_when_the_server_is_unreachable(tmp_path):
    from storage.db import open_database
    from storage.files import FileStore
    from storage.records import utc_now
    from storage.store import Store

    database = open_database(
        "postgresql+asyncpg://postgres@127.0.0.1:1/test", busy_timeout_seconds=1
    )
    unreachable = Store(
        database,
        FileStore(tmp_path),
        cache_hits_are_free=True,
        clock=utc_now,
    )
    try:
        assert await unreachable.ping() is False
    finally:
        await unreachable.close()


def test_a_missing_database_driver_names_the_package_to_install(monkeypatch):
    # asyncpg is an optional extra; an operator who points the URL at PostgreSQL without
    # it gets one line naming the install, not a traceback from SQLAlchemy's dialect.
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    with pytest.raises(DatabaseOpenError) as refused:
        open_database("postgresql+asyncpg://karaoke:hunter2@db.example/karaoke")
    message = str(refused.value)
    assert "'asyncpg' is not installed" in message
    assert "karaoke-bot[postgres]" in message
    assert "hunter2" not in message
