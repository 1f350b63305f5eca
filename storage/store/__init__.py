"""The store: everything the bot must remember, behind one async object by concern.

Usage::

    store = await Store.open(settings.database_url, settings.general.data_dir)
    try:
        for recovered in await store.upkeep.recover_interrupted():
            ...  # requeue or tell the user
        user = await store.users.upsert("telegram", "12345", "Alice")
        job = await store.jobs.reserve(user, request, limits)  # may raise a quota error
        await store.jobs.mark_running(job.id)
        await store.jobs.mark_done(job.id, cache_hit=False)
    finally:
        await store.close()

:class:`Store` owns the engine and the upload folder; each concern is a small object on
it, in its own module here: ``users`` (users and admin), ``quotas`` (what is left, and
the one refusal decision), ``jobs`` (the job lifecycle), ``deliveries`` (the distributed
backend's delivery leases), ``intake`` (songs accepted before their job), ``lyrics``
(the words kept for a job's karaoke video), ``upkeep`` (recovery and retention) and
``stats``. The SQL each runs lives one level up
(``storage/users.py``, ``storage/jobs.py``, ...), in functions that take the caller's
session.

Every method opens its own short session, so concurrent tasks never share one, and
returns frozen dataclasses from :mod:`storage.records`, never ORM objects. Methods take
an optional ``now`` (timezone-aware) so tests can move through the 24 h window without
sleeping; otherwise the store's clock is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import text
from sqlalchemy.engine import URL

from storage.db import Database, open_database
from storage.errors import DatabaseOpenError
from storage.files import FileStore
from storage.migrate import upgrade
from storage.records import Clock, utc_now
from storage.store.context import StoreContext
from storage.store.deliveries import Deliveries
from storage.store.intake import Intake
from storage.store.jobs import Jobs
from storage.store.lyrics import Lyrics
from storage.store.quotas import Quotas
from storage.store.stats import Statistics
from storage.store.upkeep import Upkeep
from storage.store.users import Users

__all__ = [
    "Deliveries",
    "Intake",
    "Jobs",
    "Lyrics",
    "Quotas",
    "Statistics",
    "Store",
    "StoreContext",
    "Upkeep",
    "Users",
]


class Store:
    """Users, quotas, jobs, deliveries, intake, lyrics, upkeep and stats on one database
    and one upload folder. Create with :meth:`open`, end with :meth:`close`."""

    def __init__(
        self,
        database: Database,
        files: FileStore,
        *,
        cache_hits_are_free: bool,
        clock: Clock,
        lyrics_max_age: timedelta = timedelta(hours=24),
    ) -> None:
        context = StoreContext(
            db=database,
            files=files,
            clock=clock,
            cache_hits_are_free=cache_hits_are_free,
            lyrics_max_age=lyrics_max_age,
        )
        self._db = database
        self.files = files
        self.users = Users(context)
        self.quotas = Quotas(context)
        self.jobs = Jobs(context)
        self.deliveries = Deliveries(context)
        self.intake = Intake(context)
        self.lyrics = Lyrics(context)
        self.upkeep = Upkeep(context)
        self.stats = Statistics(context)

    @classmethod
    async def open(
        cls,
        url: str | URL,
        data_dir: Path,
        *,
        cache_hits_are_free: bool = True,
        busy_timeout_seconds: float = 30.0,
        serialize_sqlite_writes: bool = True,
        migrate: bool = True,
        clock: Clock = utc_now,
        connect_args: Mapping[str, Any] | None = None,
        lyrics_max_age: timedelta = timedelta(hours=24),
    ) -> Store:
        """Connect, create the data folders and (by default) apply pending migrations.

        Args:
            url: any async SQLAlchemy URL, e.g. ``sqlite+aiosqlite:///data/karaoke.db`` or
                ``postgresql+asyncpg://user@host/db``.
            data_dir: uploads are kept below it (results live in the separation cache).
            cache_hits_are_free: refund a job whose result came from the cache.
            busy_timeout_seconds: how long a SQLite writer waits for another one.
            serialize_sqlite_writes: queue this process's SQLite writers in Python
                rather than on the file lock (see :mod:`storage.db`).
            migrate: upgrade the schema to the newest revision first.
            connect_args: passed to the driver (e.g. asyncpg ``server_settings``).
            lyrics_max_age: how long a job's lyrics are kept (as long as the result
                cache keeps its stems: a video needs both).

        Raises:
            DatabaseOpenError: the database is unreachable, not a database, or its
                schema cannot be upgraded.
            DataDirError: the data directory cannot be created or written.
        """
        database = open_database(
            url,
            busy_timeout_seconds=busy_timeout_seconds,
            serialize_writes=serialize_sqlite_writes,
            connect_args=connect_args,
        )
        store = cls(
            database,
            FileStore(data_dir),
            cache_hits_are_free=cache_hits_are_free,
            clock=clock,
            lyrics_max_age=lyrics_max_age,
        )
        try:
            await store.files.prepare()
            if migrate:
                await store.upgrade_schema()
            else:
                async with database.errors(DatabaseOpenError), database.read() as session:
                    await session.connection()
        except BaseException:
            await database.close()
            raise
        return store

    async def upgrade_schema(self) -> tuple[str | None, str | None]:
        """Apply pending migrations; return the schema revision before and after.

        Raises:
            DatabaseOpenError: not a database, unreachable, or at a revision this code
                does not know (a newer bot ran on it).
        """
        async with self._db.errors(DatabaseOpenError):
            return await upgrade(self._db)

    @property
    def database_url(self) -> str:
        """The database URL with any password hidden."""
        return self._db.display_url

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> bool:
        """True when the database answers a trivial query (for readiness probes)."""
        try:
            async with self._db.read() as session:
                await session.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; the probe reports it
            return False
        return True
