"""A fresh PostgreSQL database for a test session, on the server the tests may use."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

POSTGRES_TEST_URL = os.environ.get(
    "KARAOKE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
"""The PostgreSQL server the tests may use (default: the local trust-auth server)."""
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5.0


async def _postgres_admin(url: URL, *statements: tuple[str, dict[str, str]]) -> None:
    """Run ``statements`` one by one in autocommit (CREATE/DROP DATABASE refuse a
    transaction) on a connection to ``url``'s own database, closed afterwards.

    Raises:
        ConnectionError: the server cannot be reached or refuses the login (with the
            driver's reason), as opposed to a statement that fails once connected.
    """
    engine = create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
    )
    try:
        try:
            connection = await asyncio.wait_for(
                engine.connect(), POSTGRES_CONNECT_TIMEOUT_SECONDS + 1
            )
        except Exception as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
        try:
            for statement, parameters in statements:
                await connection.execute(text(statement), parameters)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def _run_in_own_thread(work: Coroutine[object, object, None]) -> None:
    """``asyncio.run`` in a thread of its own: in the test's thread it would replace, then
    clear, the event loop pytest-asyncio has set up for the test."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, work).result()


@contextmanager
def fresh_database() -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database (one per test session).

    For tests that need a whole database rather than a schema of the shared one (the
    store's ``backend`` fixture): procrastinate's connections, LISTEN/NOTIFY, other
    processes. Created on ``KARAOKE_TEST_POSTGRES_URL``'s server as
    ``karaoke_test_<pid>_<random>``, so parallel runs never meet, and dropped at the
    end, its leftover connections terminated first. Tests sharing it must not assume
    it is empty. Skipped, with the server's answer as the reason, when the server
    cannot be reached within a few seconds.
    """
    admin = make_url(POSTGRES_TEST_URL)
    name = f"karaoke_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        _run_in_own_thread(_postgres_admin(admin, (f'CREATE DATABASE "{name}"', {})))
    except ConnectionError as exc:
        shown = admin.render_as_string(hide_password=True)
        pytest.skip(f"PostgreSQL unreachable at {shown}: {exc}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        _run_in_own_thread(
            _postgres_admin(
                admin,
                (
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()",
                    {"name": name},
                ),
                (f'DROP DATABASE IF EXISTS "{name}"', {}),
            )
        )
