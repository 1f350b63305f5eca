"""The plain values ``storage`` takes and returns.

The facade hands out frozen dataclasses, never ORM objects, so callers cannot touch a
session by accident and a record stays valid after its session is gone.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal, TypeGuard, get_args

from storage.errors import InvalidJobRequestError
from storage.order import StoredOrder

Platform = Literal["telegram", "discord"]
"""The chat platforms users come from (the command line records no users)."""
PLATFORMS: tuple[str, ...] = get_args(Platform)

Clock = Callable[[], datetime]


def is_platform(name: str) -> TypeGuard[Platform]:
    """Whether ``name`` is one of :data:`PLATFORMS` (and so a :data:`Platform`)."""
    return name in PLATFORMS


_SHA256 = re.compile(r"[0-9a-f]{64}")

CONTROL_TOKEN = re.compile(r"[A-Za-z0-9_-]{12}")
"""A job's control token: 9 random bytes, URL-safe base64 (``secrets.token_urlsafe(9)``).

Button data names a job by this token, not by its id: ids are sequential, so a forged
button could probe which jobs exist (issue 20). 72 random bits cannot be guessed, and
12 characters keep the longest button data far below Telegram's 64 bytes."""


def new_control_token() -> str:
    """A fresh random :data:`CONTROL_TOKEN` for a new job."""
    return secrets.token_urlsafe(9)


def is_control_token(text: str) -> bool:
    """Whether ``text`` has the form of a control token (checked before any query)."""
    return CONTROL_TOKEN.fullmatch(text) is not None


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the only kind of time ``storage`` keeps)."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is refused, since its zone would be a guess.

    Raises:
        ValueError: ``moment`` has no timezone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"storage only accepts timezone-aware datetimes, not {moment}")
    return moment.astimezone(UTC)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        """Queued and running jobs hold a concurrency slot and may still change."""
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


ACTIVE_STATUSES: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.RUNNING)
ACTIVE_STATUS_VALUES: tuple[str, ...] = tuple(status.value for status in ACTIVE_STATUSES)


@dataclass(frozen=True)
class QuotaLimits:
    """Limits for one user; ``None`` means unlimited.

    The bot builds one from its per-platform settings; ``storage`` applies the user's
    overrides on top, and ignores all of it for admins.
    """

    songs_per_day: int | None
    audio_minutes_per_day: float | None
    max_song_minutes: float | None
    max_concurrent_jobs: int | None

    @classmethod
    def unlimited(cls) -> QuotaLimits:
        return cls(None, None, None, None)


@dataclass(frozen=True)
class ChatRef:
    """Where a job came from, so a result or an error can be delivered after a restart.

    Telegram uses ``chat_id`` and ``message_id``; Discord uses ``guild_id``,
    ``channel_id`` and ``message_id``. Ids are strings because platforms disagree on
    their size and sign.
    """

    chat_id: str | None = None
    guild_id: str | None = None
    channel_id: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class JobRequest:
    """What the bot knows about an upload when it asks for a job."""

    input_sha256: str
    input_duration_seconds: float
    input_size_bytes: int
    model: str
    order: StoredOrder = field(default_factory=StoredOrder)
    """What the user asked for with the song, kept with the job (``storage.order``)."""
    original_filename: str | None = None
    input_path: Path | None = None
    chat: ChatRef = ChatRef()
    intake_id: int | None = None
    """The song's intake record (``storage.intake``), removed as the job is reserved."""

    def __post_init__(self) -> None:
        if not _SHA256.fullmatch(self.input_sha256):
            raise InvalidJobRequestError("input_sha256 must be 64 lowercase hex digits")
        if not math.isfinite(self.input_duration_seconds) or self.input_duration_seconds < 0:
            raise InvalidJobRequestError("input_duration_seconds must be a finite number >= 0")
        if self.input_size_bytes < 0:
            raise InvalidJobRequestError("input_size_bytes must be >= 0")
        if not 0 < len(self.model) <= 64:
            raise InvalidJobRequestError("model must have 1 to 64 characters")


@dataclass(frozen=True)
class UserRecord:
    id: int
    platform: Platform
    platform_user_id: str
    display_name: str
    first_seen: datetime
    last_seen: datetime
    is_banned: bool
    is_admin: bool
    songs_per_day_override: int | None
    audio_minutes_per_day_override: float | None
    max_song_minutes_override: float | None
    max_concurrent_jobs_override: int | None

    @property
    def ref(self) -> str:
        """``platform:id``, the form the admin commands accept."""
        return f"{self.platform}:{self.platform_user_id}"


@dataclass(frozen=True)
class JobRecord:
    id: int
    user_id: int
    status: JobStatus
    chat: ChatRef
    input_sha256: str
    input_duration_seconds: float
    input_size_bytes: int
    original_filename: str | None
    input_path: Path | None
    model: str
    order: StoredOrder
    error_kind: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cache_key: str | None
    cache_hit: bool | None
    # The distributed backend's bookkeeping; defaults keep records built without them
    # (the local backend's, and tests') valid.
    attempt: int = 0
    """How many times a worker started the job."""
    queue_job_id: int | None = None
    """The procrastinate job carrying it (distributed backend only)."""
    delivered_by: str | None = None
    """The front-end process that delivers the result, or last did (None: never claimed)."""
    delivery_lease_until: datetime | None = None
    """Until when ``delivered_by``'s claim holds; after it, another front-end may take over."""
    control_token: str | None = None
    """The job's opaque name in button data (``storage.jobs.new_control_token``); None
    only in records built without a database."""


@dataclass(frozen=True)
class QuotaStatus:
    """What a user may still do, for messages like "2 songs left; next frees up at 14:05".

    ``*_left`` and the limits are ``None`` when unlimited. ``frees_at`` is when the
    oldest charge in the rolling window expires (None when nothing is charged).
    """

    limits: QuotaLimits
    songs_used: int
    audio_minutes_used: float
    songs_left: int | None
    audio_minutes_left: float | None
    active_jobs: int
    frees_at: datetime | None
    is_admin: bool
    is_banned: bool


class RecoveryAction(StrEnum):
    REQUEUED = "requeued"
    FAILED = "failed"


@dataclass(frozen=True)
class RecoveredJob:
    """A job a previous process left unfinished, and what recovery did with it."""

    job: JobRecord
    user: UserRecord
    action: RecoveryAction


@dataclass(frozen=True)
class TopUser:
    platform: str
    platform_user_id: str
    display_name: str
    jobs_done: int
    audio_minutes: float


@dataclass(frozen=True)
class Stats:
    users: int
    jobs_by_status: dict[str, int]
    audio_hours_processed: float
    """Hours of audio in done jobs, cache hits included (what users received)."""
    cache_hits: int
    cache_hit_rate: float | None
    """Share of done jobs served from the cache; None before any job is done."""
    top_users: list[TopUser]


@dataclass(frozen=True)
class CleanupReport:
    uploads_removed: int = 0
    temporaries_removed: int = 0
