"""The store in tests: which database it runs on, a clock moved by hand, valid quota
limits and job requests, and Alembic run by hand on a database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy.engine import Connection

from storage import ChatRef, JobRequest, QuotaLimits, Store
from storage.db import Database
from storage.migrate import alembic_config
from storage.order import StoredOrder

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
"""Where every test's :class:`FakeClock` starts."""


@dataclass
class Backend:
    """A database the store's tests run on: its URL and driver connect arguments."""

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


def quota_limits(
    songs: int | None = 10,
    minutes: float | None = 60.0,
    max_song_minutes: float | None = 15.0,
    concurrent: int | None = 100,
) -> QuotaLimits:
    """Platform quota limits for a test, generous unless told."""
    return QuotaLimits(
        songs_per_day=songs,
        audio_minutes_per_day=minutes,
        max_song_minutes=max_song_minutes,
        max_concurrent_jobs=concurrent,
    )


def job_request(
    *,
    seconds: float = 180.0,
    input_path: Path | None = None,
    content: bytes = b"song",
    chat: ChatRef | None = None,
) -> JobRequest:
    """A valid job request (two stems as MP3) for ``content`` lasting ``seconds``."""
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


async def run_alembic(database: Database, direction: str, target: str) -> None:
    """Alembic's ``direction`` (``upgrade``/``downgrade``) to ``target`` on ``database``."""

    def run(connection: Connection) -> None:
        getattr(command, direction)(alembic_config(connection), target)

    async with database.write_connection() as connection:
        await connection.run_sync(run)
