"""procrastinate's schema through the store's migrations: pinned, reversible, and the
one the library expects.

Revision 0002 applies a vendored copy of procrastinate 3.10.0's SQL on PostgreSQL and
nothing on SQLite; revision 0003 adds the distributed backend's job columns on both.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import inspect, text

from bot.distributed.postgres import psycopg_conninfo
from storage import Store
from storage.db import Database
from storage.errors import QueueSchemaVersionError
from storage.migrate import MIGRATIONS_DIR, current_revision, head_revision
from storage.queue_schema import (
    PROCRASTINATE_SCHEMA_VERSION,
    check_procrastinate_version,
    split_sql_statements,
)
from tests.support.store import Backend, run_alembic

DISTRIBUTED_COLUMNS = {"attempt", "queue_job_id", "delivered_by", "delivery_lease_until"}


def _revision_module(name: str) -> ModuleType:
    path = MIGRATIONS_DIR / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"revision_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REVISION_0002 = _revision_module("0002_procrastinate")
SCHEMA_FILE: Path = REVISION_0002.SCHEMA_FILE


# The pin


def test_the_vendored_schema_is_frozen() -> None:
    # Editing the copy in place would change what revision 0002 means for databases it
    # has not reached yet; a new procrastinate version needs a new revision instead.
    assert SCHEMA_FILE.name == f"procrastinate_{PROCRASTINATE_SCHEMA_VERSION}.sql"
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == REVISION_0002.SCHEMA_SHA256


def test_the_vendored_schema_is_the_installed_librarys() -> None:
    procrastinate_schema = pytest.importorskip("procrastinate.schema")
    installed = importlib.metadata.version("procrastinate")
    if installed != PROCRASTINATE_SCHEMA_VERSION:
        pytest.skip(
            f"procrastinate {installed} installed, the copy is of {PROCRASTINATE_SCHEMA_VERSION}"
        )
    expected = procrastinate_schema.SchemaManager.get_schema()
    assert SCHEMA_FILE.read_text(encoding="utf-8") == expected


def test_the_installed_procrastinate_passes_the_version_check() -> None:
    pytest.importorskip("procrastinate")
    check_procrastinate_version(importlib.metadata.version("procrastinate"))


@pytest.mark.parametrize("installed", ["3.11.0", "3.9.1", "3.10", "4.0.0", ""])
def test_another_procrastinate_version_is_refused(installed: str) -> None:
    with pytest.raises(QueueSchemaVersionError) as refused:
        check_procrastinate_version(installed)
    assert refused.value.installed == installed
    assert refused.value.expected == "3.10.0"
    assert "procrastinate==3.10.0" in str(refused.value)


def test_the_downgrade_drops_everything_the_schema_creates() -> None:
    created: dict[str, set[str]] = {"TABLE": set(), "TYPE": set(), "FUNCTION": set()}
    created["TRIGGER"] = set()
    pattern = re.compile(r"^CREATE (TABLE|TYPE|FUNCTION|TRIGGER) (\w+)", re.MULTILINE)
    for kind, name in pattern.findall(SCHEMA_FILE.read_text(encoding="utf-8")):
        created[kind].add(name)
    assert created == {
        "TABLE": set(REVISION_0002.TABLES),
        "TYPE": set(REVISION_0002.TYPES),
        "FUNCTION": set(REVISION_0002.FUNCTIONS),
        "TRIGGER": set(REVISION_0002.TRIGGERS),
    }
    # Nothing is created that the lists above would miss (indexes go with their tables).
    others = re.findall(
        r"^CREATE (?!TABLE|TYPE|FUNCTION|TRIGGER|INDEX|UNIQUE INDEX)\S+",
        SCHEMA_FILE.read_text(),
        re.MULTILINE,
    )
    assert others == []


# The statement splitter


def test_the_schema_splits_into_its_statements() -> None:
    statements = split_sql_statements(SCHEMA_FILE.read_text(encoding="utf-8"))
    kinds = [re.sub(r"--[^\n]*\n", "", statement).split()[:2] for statement in statements]
    assert kinds[0] == ["DO", "$$"]
    assert sum(kind == ["CREATE", "FUNCTION"] for kind in kinds) == len(REVISION_0002.FUNCTIONS)
    assert sum(kind == ["CREATE", "TRIGGER"] for kind in kinds) == len(REVISION_0002.TRIGGERS)
    assert len(statements) == 42
    assert not any(statement.endswith(";") for statement in statements)


def test_splitting_honours_quotes_comments_and_dollar_bodies() -> None:
    script = """
        -- a comment; not a statement end
        CREATE TABLE "odd;name" (note text DEFAULT 'it''s; fine');
        /* block; comment */
        CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $body$
        BEGIN PERFORM 'x;y'; RAISE NOTICE '$$;'; END;
        $body$;
        SELECT $$a;b$$, 'c'
    """
    statements = split_sql_statements(script)
    assert len(statements) == 3
    assert statements[0].endswith("""CREATE TABLE "odd;name" (note text DEFAULT 'it''s; fine')""")
    assert statements[1].startswith("/* block; comment */\n")
    assert statements[1].endswith("$body$")
    assert statements[2] == "SELECT $$a;b$$, 'c'"


@pytest.mark.parametrize(
    "script",
    ["SELECT 'open; SELECT 1;", 'SELECT "open; SELECT 1;', "/* open; SELECT 1;", "DO $x$ x;"],
)
def test_an_unclosed_quote_or_body_is_an_error(script: str) -> None:
    with pytest.raises(ValueError, match="never closed"):
        split_sql_statements(script)


def test_comment_only_pieces_are_dropped() -> None:
    assert split_sql_statements("-- only\n;\n  ;\nSELECT 1; -- tail\n") == ["SELECT 1"]


# Migrations on both backends


async def _job_columns(database: Database) -> set[str]:
    async with database.read() as session:
        connection = await session.connection()
        columns = await connection.run_sync(lambda sync: inspect(sync).get_columns("jobs"))
    return {column["name"] for column in columns}


_QUEUE_OBJECTS = """
SELECT 'table', relname FROM pg_class
 WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'
   AND relname LIKE 'procrastinate%'
UNION ALL
SELECT 'type', typname FROM pg_type
 WHERE typnamespace = current_schema()::regnamespace AND typtype IN ('e', 'c')
   AND typname LIKE 'procrastinate%'
   AND NOT EXISTS (SELECT 1 FROM pg_class WHERE pg_class.oid = typrelid AND relkind = 'r')
UNION ALL
SELECT 'function', proname FROM pg_proc
 WHERE pronamespace = current_schema()::regnamespace AND proname LIKE 'procrastinate%'
UNION ALL
SELECT 'trigger', tgname FROM pg_trigger JOIN pg_class ON pg_class.oid = tgrelid
 WHERE relnamespace = current_schema()::regnamespace AND tgname LIKE 'procrastinate%'
"""

# Anything at all of procrastinate's left in the schema: indexes and sequences too.
_ANY_QUEUE_OBJECT = """
SELECT (SELECT count(*) FROM pg_class
         WHERE relnamespace = current_schema()::regnamespace AND relname LIKE '%procrastinate%')
     + (SELECT count(*) FROM pg_type
         WHERE typnamespace = current_schema()::regnamespace AND typname LIKE '%procrastinate%')
     + (SELECT count(*) FROM pg_proc
         WHERE pronamespace = current_schema()::regnamespace AND proname LIKE '%procrastinate%')
"""


async def _queue_objects(database: Database) -> dict[str, set[str]]:
    """procrastinate's tables, types, functions and triggers in the database's schema."""
    if database.engine.dialect.name != "postgresql":
        return {}
    async with database.read() as session:
        rows = (await session.execute(text(_QUEUE_OBJECTS))).all()
    found: dict[str, set[str]] = {}
    for kind, name in rows:
        found.setdefault(kind, set()).add(name)
    return found


def _expected_queue_objects(backend: Backend) -> dict[str, set[str]]:
    if backend.name != "postgresql":
        return {}
    return {
        "table": set(REVISION_0002.TABLES),
        "type": set(REVISION_0002.TYPES),
        "function": set(REVISION_0002.FUNCTIONS),
        "trigger": set(REVISION_0002.TRIGGERS),
    }


async def test_head_has_the_queue_on_postgresql_only(backend: Backend, database: Database) -> None:
    await run_alembic(database, "upgrade", "head")
    assert await _queue_objects(database) == _expected_queue_objects(backend)
    assert DISTRIBUTED_COLUMNS <= await _job_columns(database)


async def test_0002_is_a_no_op_on_sqlite_and_0003_adds_the_columns(
    backend: Backend, database: Database
) -> None:
    await run_alembic(database, "upgrade", "0001")
    async with database.read() as session:
        connection = await session.connection()
        before = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    await run_alembic(database, "upgrade", "0002")
    async with database.read() as session:
        connection = await session.connection()
        after = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    added = after - before
    if backend.name == "sqlite":
        assert added == set()
    else:
        assert added == set(REVISION_0002.TABLES)
    assert not DISTRIBUTED_COLUMNS & await _job_columns(database)
    await run_alembic(database, "upgrade", "0003")
    assert DISTRIBUTED_COLUMNS <= await _job_columns(database)


async def test_upgrade_downgrade_upgrade_keeps_the_data(
    backend: Backend, data_dir: Path, database: Database, make_limits, make_request
) -> None:
    store = await backend.open_store(data_dir)
    try:
        user = await store.users.upsert("telegram", "1", "Ann")
        job = await store.jobs.reserve(user, make_request(), make_limits())
        await store.deliveries.record_attempt(job.id)
    finally:
        await store.close()

    await run_alembic(database, "downgrade", "0001")
    assert await current_revision(database) == "0001"
    assert await _queue_objects(database) == {}
    assert not DISTRIBUTED_COLUMNS & await _job_columns(database)
    async with database.read() as session:
        if backend.name == "postgresql":
            assert await session.scalar(text(_ANY_QUEUE_OBJECT)) == 0
        # SQLite drops the columns in place: rebuilding ``jobs`` would have deleted
        # the job's charge through ON DELETE CASCADE.
        counts = (
            await session.execute(
                text("SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM usage)")
            )
        ).one()
    assert tuple(counts) == (1, 1)

    await run_alembic(database, "upgrade", "head")
    assert await current_revision(database) == head_revision()
    assert await _queue_objects(database) == _expected_queue_objects(backend)
    store = await backend.open_store(data_dir)
    try:
        again = await store.jobs.get(job.id)
        assert again.attempt == 0  # the column came back with its default
        assert again.delivered_by is None and again.queue_job_id is None
        assert await store.deliveries.record_attempt(job.id) == 1
    finally:
        await store.close()


# The library against the migrated database


async def test_procrastinate_defers_and_runs_a_job_on_the_migrated_database(
    postgres_url: str, tmp_path: Path
) -> None:
    procrastinate = pytest.importorskip("procrastinate")
    store = await Store.open(postgres_url, tmp_path / "data")
    try:
        await store.close()  # the schema is in place; the queue needs no store
        app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=psycopg_conninfo(postgres_url))
        )
        ran: list[str] = []

        @app.task(name="karaoke_test.echo", queue="karaoke_test")
        async def echo(song: str) -> None:
            ran.append(song)

        async with app.open_async():
            assert await app.job_manager.check_connection_async()
            queue_job_id = await echo.defer_async(song="abc")
            await app.run_worker_async(
                queues=["karaoke_test"],
                wait=False,
                install_signal_handlers=False,
                listen_notify=False,
            )
            (job,) = await app.job_manager.list_jobs_async(id=queue_job_id)
        assert ran == ["abc"]
        assert job.status == "succeeded"
    finally:
        await store.close()
