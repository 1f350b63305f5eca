"""The database tables: users, jobs, the usage each job charged, and songs accepted
before their job exists (``SongIntake``).

Only portable column types are used so that the same models run on SQLite and on
PostgreSQL. Constraint names come from a naming convention so that migrations can
refer to them by name on both backends (SQLite's batch mode needs names).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from storage.records import as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type and hands back naive datetimes; PostgreSQL hands back
    aware ones. Storing naive UTC on SQLite and normalising on the way out means callers
    always get aware UTC values, and SQLite's text comparison stays chronological.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("platform", "platform_user_id"),
        # 'cli' is a platform nothing records any more (``storage.records.Platform``);
        # the schema keeps allowing it rather than rebuild the table for a tighter check.
        CheckConstraint("platform IN ('telegram', 'discord', 'cli')", name="platform"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(255))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    is_banned: Mapped[bool] = mapped_column(Boolean, server_default=false())
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=false())
    songs_per_day_override: Mapped[int | None] = mapped_column(Integer)
    audio_minutes_per_day_override: Mapped[float | None] = mapped_column(Float)
    max_song_minutes_override: Mapped[float | None] = mapped_column(Float)
    max_concurrent_jobs_override: Mapped[int | None] = mapped_column(Integer)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'cancelled')", name="status"
        ),
        Index(None, "user_id", "status"),
        Index(None, "status"),
        Index(None, "cache_key"),
        Index(None, "control_token", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    guild_id: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(64))
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_duration_seconds: Mapped[float] = mapped_column(Float)
    input_size_bytes: Mapped[int] = mapped_column(BigInteger)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    input_path: Mapped[str | None] = mapped_column(String(1024))
    model: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The job's order (``storage.order.StoredOrder.to_json``), validated on write and read."""
    status: Mapped[str] = mapped_column(String(16))
    error_kind: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cache_key: Mapped[str | None] = mapped_column(String(128))
    cache_hit: Mapped[bool | None] = mapped_column(Boolean)
    # The distributed backend (revision 0003): see ``storage.jobs`` for the delivery lease.
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    delivered_by: Mapped[str | None] = mapped_column(String(64))
    delivery_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the karaoke buttons carry instead of the (sequential, guessable) id: revision 0006.
    control_token: Mapped[str | None] = mapped_column(String(16))


class Usage(Base):
    """What one job charged against its user's rolling quota; refunds keep the row."""

    __tablename__ = "usage"
    __table_args__ = (Index(None, "user_id", "charged_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    charged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    songs: Mapped[int] = mapped_column(Integer)
    audio_seconds: Mapped[float] = mapped_column(Float)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refund_reason: Mapped[str | None] = mapped_column(String(32))


class SongIntake(Base):
    """A song the bot accepted from a chat and has no job for yet (``storage.intake``).

    Written before the platform is told the message arrived (Telegram forgets an update
    once the next ``getUpdates`` confirms it), so that a crash while the song downloads or
    waits for its header check is noticed at the next start. The row goes when the job
    is reserved (in the same transaction) or the song is refused or given up.
    """

    __tablename__ = "song_intake"
    __table_args__ = (Index(None, "holder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    guild_id: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(64))
    file_ref: Mapped[str] = mapped_column(String(2048))
    """What the platform needs to hand the file out again (a Telegram file_id, a Discord
    attachment URL)."""
    file_unique_id: Mapped[str | None] = mapped_column(String(128))
    file_name: Mapped[str | None] = mapped_column(String(255))
    declared_size: Mapped[int | None] = mapped_column(BigInteger)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    progress_message: Mapped[str | None] = mapped_column(String(64))
    holder: Mapped[str | None] = mapped_column(String(64))
    """The distributed front-end that accepted it (None: the only process)."""
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JobLyrics(Base):
    """What a finished job's karaoke video shows (``storage.lyrics``): its song's title and
    artist as delivered, and its words (from its tags, its user or the lyrics service)
    once known; one row per job, gone with the job's stems."""

    __tablename__ = "job_lyrics"
    __table_args__ = (
        CheckConstraint("source IN ('tags', 'user', 'lrclib')", name="source"),
        Index(None, "stored_at"),
    )

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    title: Mapped[str | None] = mapped_column(String(255))
    artist: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(16))
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime())


def clip_to_column(text: str | None, column: InstrumentedAttribute[str | None]) -> str | None:
    """Cut free text (a file name, an error kind) to its column's length: PostgreSQL
    refuses longer text where SQLite would keep it."""
    return text[: column.type.length] if text is not None else None
