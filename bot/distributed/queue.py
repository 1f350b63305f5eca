"""The job queue both sides share: a procrastinate App on the store's PostgreSQL.

Front-ends defer jobs and read their state; workers run them. The queue's tables live in
the same database as the bot's users, jobs and quotas (procrastinate's schema is one of
our Alembic revisions, pinned to one procrastinate release), so there is no broker to run
and a job, its quota reservation and its state are in one place.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import procrastinate

from bot.distributed.postgres import psycopg_conninfo
from bot.settings import Settings
from storage.queue_schema import check_procrastinate_version


def make_queue_app(settings: Settings, *, max_connections: int = 10) -> procrastinate.App:
    """The procrastinate App for ``settings`` (not opened yet: ``async with app.open_async()``).

    Raises:
        QueueSchemaVersionError: the installed procrastinate is not the release our
            schema pins (see ``storage.queue_schema``).
    """
    check_procrastinate_version(importlib.metadata.version("procrastinate"))
    connector = procrastinate.PsycopgConnector(
        conninfo=psycopg_conninfo(settings.database_url),
        min_size=1,
        max_size=max_connections,
        kwargs={"application_name": "karaoke-bot"},
    )
    return procrastinate.App(connector=connector)


async def fetch_all(app: procrastinate.App, query: str, **params: Any) -> list[dict[str, Any]]:
    """Run one statement on the queue's pool (autocommit) and return its rows."""
    return list(await app.connector.execute_query_all_async(query, **params))


def queueing_lock(job_id: str) -> str:
    """The queueing lock a caller's job is deferred under: one waiting row per job."""
    return f"job:{job_id}"
