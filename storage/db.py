"""The async engine and sessions, with SQLite set up for a concurrent bot.

Everything SQLite-specific lives here, so the queries elsewhere stay portable:

* WAL journal, so readers never wait for the writer;
* a busy timeout, so a second writer waits instead of failing at once;
* foreign keys on (SQLite leaves them off per connection);
* SQLAlchemy, not the ``sqlite3`` driver, emits ``BEGIN``: the driver's legacy mode
  runs SELECTs outside any transaction, which would break check-then-insert. Write
  transactions start with ``BEGIN IMMEDIATE`` so they take the write lock before
  reading (no "database is locked" upgrade failure after a read, and check-and-reserve
  is serialized). PostgreSQL gets the same guarantee from row locks (``FOR UPDATE``).
* Writers from this process also queue on an ``asyncio.Lock`` before ``BEGIN
  IMMEDIATE``. SQLite admits one writer at a time anyway; without the queue, waiting
  writers poll the file lock with sleeps of up to 100 ms and may starve past the busy
  timeout under a burst. The database lock still guards against other processes (an
  admin command next to the running bot), and ``serialize_writes=False`` turns the
  queue off, which the tests use to prove that the database alone keeps
  check-and-reserve atomic.

Each task gets its own session from :meth:`Database.read` or :meth:`Database.write`.

The SQLite file holds users' display names, so it is created here, 0600, before SQLAlchemy
connects: left to SQLite it would get 0644 from the usual umask and be readable by every
account on a shared host. SQLite gives its ``-wal`` and ``-shm`` files the database
file's mode, so they follow. Its folder, when this module creates it, is 0700.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.errors import DatabaseError, DatabaseOpenError, DataDirError
from storage.files import make_private_dirs

logger = logging.getLogger(__name__)

# Execution option read by the SQLite "begin" hook; other backends ignore it.
_SQLITE_BEGIN = "karaoke_sqlite_begin"


class Database:
    """An async engine plus the two kinds of session the store uses."""

    def __init__(self, engine: AsyncEngine, *, serialize_writes: bool = False) -> None:
        self.engine = engine
        self._writer_queue = asyncio.Lock() if serialize_writes else None
        self._read = async_sessionmaker(engine, expire_on_commit=False)
        self._write = async_sessionmaker(
            engine,
            expire_on_commit=False,
            execution_options={_SQLITE_BEGIN: "BEGIN IMMEDIATE"},
        )

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, safe for logs and error messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries; its transaction is rolled back at the end.

        Raises:
            DatabaseError: the database failed (the driver's error is chained).
        """
        async with self.errors(DatabaseError), self._read() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error.

        Raises:
            DatabaseError: the database failed (the driver's error is chained).
        """
        async with (
            self._writer_turn(),
            self.errors(DatabaseError),
            self._write() as session,
            session.begin(),
        ):
            yield session

    @asynccontextmanager
    async def write_connection(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a write transaction (for migrations), committed at the end."""
        async with (
            self._writer_turn(),
            self.errors(DatabaseError),
            self.engine.connect() as connection,
        ):
            await connection.execution_options(**{_SQLITE_BEGIN: "BEGIN IMMEDIATE"})
            async with connection.begin():
                yield connection

    @asynccontextmanager
    async def _writer_turn(self) -> AsyncIterator[None]:
        if self._writer_queue is None:
            yield
        else:
            async with self._writer_queue:
                yield

    @asynccontextmanager
    async def errors(self, kind: type[DatabaseError]) -> AsyncIterator[None]:
        """Turn driver and migration errors into ``kind`` with a one-line reason."""
        try:
            yield
        except DatabaseError as exc:
            if isinstance(exc, kind):
                raise
            raise kind(url=exc.url, reason=exc.reason) from exc
        except (DBAPIError, CommandError, OSError) as exc:
            raise kind(url=self.display_url, reason=_reason(exc)) from exc

    async def close(self) -> None:
        await self.engine.dispose()


def _shown(url: str | URL) -> str:
    """The URL as errors may show it: the password masked whenever it can be parsed."""
    try:
        return (make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unparsable database URL)"


def open_database(
    url: str | URL,
    *,
    busy_timeout_seconds: float = 30.0,
    serialize_writes: bool = True,
    connect_args: Mapping[str, Any] | None = None,
) -> Database:
    """Create the engine for ``url`` (no connection is made yet).

    ``serialize_writes`` queues this process's SQLite writers (see the module docstring);
    other backends ignore it. A SQLite file is created (empty, 0600) when missing, and an
    existing one that others may read is made 0600.

    Raises:
        DatabaseOpenError: the URL is malformed or names a driver that is not installed,
            or the SQLite file cannot be created or made private.
        DataDirError: the folder for a SQLite file cannot be created.
    """
    try:
        parsed = make_url(url)
        engine = create_async_engine(parsed, connect_args=dict(connect_args or {}))
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseOpenError(url=_shown(url), reason=str(exc)) from None
    except ModuleNotFoundError as exc:
        # The dialect exists but its driver is an optional install (asyncpg for
        # PostgreSQL: the "postgres" extra), so say which package to add.
        hint = " (pip install 'karaoke-bot[postgres]')" if exc.name == "asyncpg" else ""
        reason = f"its database driver {exc.name!r} is not installed{hint}"
        raise DatabaseOpenError(url=_shown(url), reason=reason) from None
    if engine.dialect.name != "sqlite":
        return Database(engine)
    _prepare_sqlite_file(parsed)
    _configure_sqlite(engine, busy_timeout_seconds)
    return Database(engine, serialize_writes=serialize_writes)


def _prepare_sqlite_file(url: URL) -> None:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return
    path = Path(url.database)
    try:
        make_private_dirs(path.parent)
    except OSError as exc:
        raise DataDirError(path=path.parent, reason=exc.strerror or str(exc)) from None
    try:
        _create_private_file(path)
    except OSError as exc:
        shown = url.render_as_string(hide_password=True)
        raise DatabaseOpenError(url=shown, reason=exc.strerror or str(exc)) from None


def _create_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 (SQLite takes an empty file for a new database),
    or, when it exists, take group and other access away from it and its companions.

    ``O_EXCL`` creates only a file that is not there, and never through a symlink. The
    ``fchmod`` makes the mode exactly 0600 whatever the umask.
    """
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        # Companions survive a crash, or may come from an install before this check.
        for existing in (path, *(Path(f"{path}{suffix}") for suffix in _COMPANIONS)):
            _make_private(existing)
        return
    try:
        os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


# SQLite's rollback journal and its WAL-mode files, named after the database file.
_COMPANIONS = ("-journal", "-wal", "-shm")


def _make_private(path: Path) -> None:
    """Take group and other access away from a file of the bot's own, if it has any."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(status.st_mode)
    # Folders and devices are not ours to change; SQLite reports them when it opens.
    if not stat.S_ISREG(status.st_mode) or not mode & 0o077:
        return
    try:
        os.chmod(path, mode & ~0o077)
    except PermissionError as exc:
        # Another account's file (an admin's copy, say): refusing to start would not
        # make it private, so say so and go on; SQLite reports it if it cannot be used.
        logger.warning("cannot make %s private (mode %04o): %s", path, mode, exc.strerror)
        return
    logger.info("made %s private (mode %04o -> %04o)", path, mode, mode & ~0o077)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_seconds: float) -> None:
    busy_timeout_ms = int(busy_timeout_seconds * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            # NORMAL is durable across application crashes in WAL mode; only a power
            # loss can drop the last transactions, never corrupt the file.
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get(_SQLITE_BEGIN, "BEGIN"))


def _reason(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's statement dump."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__
