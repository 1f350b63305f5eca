"""Alembic environment for the store, running on async engines.

Normally ``storage.migrate`` opens a connection on the store's own async engine (with
its SQLite settings) and passes it in ``config.attributes["connection"]``; the
migrations then run on it inside ``AsyncConnection.run_sync``. Given only a URL (the
``sqlalchemy.url`` option, e.g. from a hand-made Config), this file opens an async
engine for it the same way. There is no alembic.ini.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from storage.db import open_database
from storage.migrate import include_name
from storage.models import Base


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # storage.db makes SQLAlchemy emit BEGIN on SQLite, so DDL is transactional
        # there too and a failed migration leaves the schema as it was.
        transactional_ddl=True,
        compare_type=True,
        # procrastinate's tables (revision 0002) are not in the models; leave them be.
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_async_engine(url: str) -> None:
    database = open_database(url)
    try:
        async with database.write_connection() as connection:
            await connection.run_sync(_run_migrations)
    finally:
        await database.close()


_connection = context.config.attributes.get("connection")
if _connection is not None:
    _run_migrations(_connection)
else:
    _url = context.config.get_main_option("sqlalchemy.url")
    if not _url:
        raise RuntimeError(
            "run the store's migrations through storage.migrate (or `karaoke-bot db upgrade`)"
        )
    asyncio.run(_run_on_async_engine(_url))
