"""Fixtures for the store's tests: a real SQLite file, and PostgreSQL when reachable.

The ``backend`` fixture is parametrized over both databases, so every test that uses
``store`` runs twice. PostgreSQL comes from ``KARAOKE_TEST_POSTGRES_URL`` (default: the
local trust-auth server); each test gets a fresh schema that is dropped afterwards, so
runs never see each other's rows. When the server is unreachable the PostgreSQL half is
skipped with the reason.
"""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from storage import ChatRef, JobRequest, QuotaLimits, Store
from storage.order import StoredOrder
from tests.conftest import POSTGRES_TEST_URL

POSTGRES_URL = POSTGRES_TEST_URL
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Backend:
    name: str
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)

    async def open_store(self, data_dir: Path, **options: Any) -> Store:
        return await Store.open(self.url, data_dir, connect_args=self.connect_args, **options)


class FakeClock:
    """A clock the tests move by hand, so the rolling 24 h window needs no sleeping."""

    def __init__(self, start: datetime = START) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(scope="session")
def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can); probed once per run."""
    url = make_url(POSTGRES_URL)
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
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Backend("postgresql", POSTGRES_URL, {"server_settings": {"search_path": schema}})
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


def _limits(
    songs: int | None = 10,
    minutes: float | None = 60.0,
    max_song_minutes: float | None = 15.0,
    concurrent: int | None = 100,
) -> QuotaLimits:
    return QuotaLimits(
        songs_per_day=songs,
        audio_minutes_per_day=minutes,
        max_song_minutes=max_song_minutes,
        max_concurrent_jobs=concurrent,
    )


def _request(
    *,
    seconds: float = 180.0,
    input_path: Path | None = None,
    content: bytes = b"song",
    chat: ChatRef | None = None,
) -> JobRequest:
    return JobRequest(
        input_sha256=hashlib.sha256(content).hexdigest(),
        input_duration_seconds=seconds,
        input_size_bytes=len(content),
        model="htdemucs",
        order=StoredOrder(stems="two", output_format="mp3"),
        original_filename="My Song.mp3",
        input_path=input_path,
        chat=chat or ChatRef(chat_id="-100123", message_id="42"),
    )


@pytest.fixture
def make_limits() -> Callable[..., QuotaLimits]:
    """``make_limits(songs=3)``: platform defaults for a test, generous unless told."""
    return _limits


@pytest.fixture
def make_request() -> Callable[..., JobRequest]:
    """``make_request(seconds=60, input_path=...)``: a valid job request."""
    return _request
