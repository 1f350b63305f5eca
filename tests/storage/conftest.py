"""Fixtures for the store's tests: a real SQLite file, and PostgreSQL when reachable.

The ``backend`` fixture is parametrized over both databases, so every test that uses
``store`` runs twice. PostgreSQL comes from ``KARAOKE_TEST_POSTGRES_TEST_URL`` (default: the
local trust-auth server); each test gets a fresh schema that is dropped afterwards, so
runs never see each other's rows. When the server is unreachable the PostgreSQL half is
skipped with the reason.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from storage import JobRequest, QuotaLimits, Store
from storage.db import Database, open_database
from tests.support.postgres import POSTGRES_TEST_URL
from tests.support.store import Backend, FakeClock, job_request, quota_limits


@pytest.fixture(scope="session")
def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can); probed once per run."""
    url = make_url(POSTGRES_TEST_URL)
    address = (url.host or "127.0.0.1", url.port or 5432)
    try:
        with socket.create_connection(address, timeout=2):
            return None
    except OSError as exc:
        return f"PostgreSQL unreachable at {url.render_as_string()}: {exc}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_unreachable: str | None
) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'karaoke.db'}")
        return
    if postgres_unreachable:
        pytest.skip(postgres_unreachable)
    schema = f"karaoke_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_TEST_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Backend("postgresql", POSTGRES_TEST_URL, {"server_settings": {"search_path": schema}})
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def store(backend: Backend, data_dir: Path, clock: FakeClock) -> AsyncIterator[Store]:
    store = await backend.open_store(data_dir, clock=clock)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def make_limits() -> Callable[..., QuotaLimits]:
    """``make_limits(songs=3)``: platform defaults for a test, generous unless told."""
    return quota_limits


@pytest.fixture
def make_request() -> Callable[..., JobRequest]:
    """``make_request(seconds=60, input_path=...)``: a valid job request."""
    return job_request


@pytest.fixture
async def database(backend: Backend) -> AsyncIterator[Database]:
    """The ``backend``'s database opened as it is, not migrated (for the migrations' tests)."""
    database = open_database(backend.url, connect_args=backend.connect_args)
    try:
        yield database
    finally:
        await database.close()
