"""Run the store's Alembic migrations from code.

The migrations ship inside the package (``storage/migrations``), so an installed bot
upgrades its database on start, and ``karaoke-bot db upgrade`` does the same on demand,
without an alembic.ini. They run on the store's own engine, so SQLite gets the same
pragmas and transaction handling as the running bot.

Alembic logs three INFO lines per upgrade (its context, DDL mode, each step), which an
operator would see before every first answer of an admin command or start-up error;
they are kept to warnings, and this module logs one line of its own instead: INFO when
an existing schema changes, DEBUG when a new database gets its first schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from storage.db import Database, open_database

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"

logger = logging.getLogger(__name__)


QUEUE_PREFIX = "procrastinate_"
"""The prefix of every object of procrastinate's schema (revision 0002, PostgreSQL)."""

UNMODELLED_TABLES = frozenset({"separation_runs"})
"""Tables a revision creates by SQL, outside ``storage.models``: the distributed run
ledger (revision 0004, ``bot.distributed.runs``), which the queue's psycopg connections use."""


def include_name(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    """Alembic's autogenerate filter: compare everything but the tables of the queue.

    procrastinate's tables come from its own SQL (``storage.queue_schema``) and the run
    ledger's from plain SQL, not from ``storage.models``; without this filter every
    comparison against a PostgreSQL database would propose dropping them.
    """
    if type_ != "table" or name is None:
        return True
    return not (name.startswith(QUEUE_PREFIX) or name in UNMODELLED_TABLES)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (and at ``connection``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this version of the code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "storage/migrations has no revisions"
    return head


async def upgrade(database: Database) -> tuple[str | None, str | None]:
    """Bring the schema up to the newest revision; a no-op when it is already there.

    Returns:
        The revision before and after (None for an empty database).

    Raises:
        CommandError: the database is at a revision this code does not know.
    """
    async with database.write_connection() as connection:
        return await connection.run_sync(_upgrade)


def _upgrade(connection: Connection) -> tuple[str | None, str | None]:
    before = _revision_of(connection)
    script = ScriptDirectory.from_config(alembic_config())
    if before == script.get_current_head():
        return before, before  # the usual start: nothing to do, nothing to log
    if before is not None and before not in {rev.revision for rev in script.walk_revisions()}:
        raise CommandError(
            f"the schema is at revision {before!r}, which this version of karaoke-bot does "
            "not know (did a newer version upgrade it?)"
        )
    with _alembic_warnings_only():
        command.upgrade(alembic_config(connection), "head")
    after = _revision_of(connection)
    level = logging.DEBUG if before is None else logging.INFO
    logger.log(level, "database schema upgraded from %s to %s", before or "empty", after)
    return before, after


@contextlib.contextmanager
def _alembic_warnings_only() -> Iterator[None]:
    alembic_logger = logging.getLogger("alembic")
    previous = alembic_logger.level
    alembic_logger.setLevel(max(previous, logging.WARNING))
    try:
        yield
    finally:
        alembic_logger.setLevel(previous)


def _revision_of(connection: Connection) -> str | None:
    # Read directly rather than through a MigrationContext, which logs on every start.
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    revision = connection.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return None if revision is None else str(revision)


async def current_revision(database: Database) -> str | None:
    """The revision the database is at (None for an empty database)."""
    async with database.read() as session:
        connection = await session.connection()
        return await connection.run_sync(_revision_of)


def make_revision(message: str) -> None:
    """Autogenerate a new revision file from the difference between the models and head.

    A developer tool: it upgrades a throwaway SQLite database to head and compares it
    with ``storage.models``. Review the file it writes before committing it.
    """

    async def _generate() -> None:
        with tempfile.TemporaryDirectory() as folder:
            database = open_database(f"sqlite+aiosqlite:///{Path(folder) / 'scratch.db'}")
            try:
                await upgrade(database)
                async with database.write_connection() as connection:
                    await connection.run_sync(
                        lambda sync: command.revision(
                            alembic_config(sync), message=message, autogenerate=True
                        )
                    )
            finally:
                await database.close()

    asyncio.run(_generate())
