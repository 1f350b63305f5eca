"""Typed errors raised by ``storage``.

Callers turn these into user-facing messages in one place, so each error carries the
values a message needs as attributes (which limit, what is left, when it frees up)
instead of making the caller parse ``str(exc)``. Every error's ``str()`` is still a
complete one-line sentence, so an admin command can print it as is.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

QuotaLimitName = Literal["songs_per_day", "audio_minutes_per_day"]


class StorageError(Exception):
    """Base class: anything ``storage`` refuses or cannot do."""


class DatabaseError(StorageError):
    """The database failed: unreachable, locked for too long, disk full, and so on."""

    action = "database error on"

    def __init__(self, *, url: str, reason: str) -> None:
        super().__init__(f"{self.action} {url}: {reason}")
        self.url = url
        self.reason = reason


class DatabaseOpenError(DatabaseError):
    """The database cannot be opened, is not a database, or cannot be migrated."""

    action = "cannot open database"


class DataDirError(StorageError):
    """The data directory (or a folder below it) cannot be created or written."""

    def __init__(self, *, path: Path, reason: str) -> None:
        super().__init__(f"data directory {path} is not usable: {reason}")
        self.path = path
        self.reason = reason


class InvalidUserRefError(StorageError, ValueError):
    """A user reference is not ``PLATFORM:ID`` with a known platform."""

    def __init__(self, *, ref: str, reason: str) -> None:
        super().__init__(f"invalid user {ref!r}: {reason}")
        self.ref = ref
        self.reason = reason


class UserNotFoundError(StorageError, LookupError):
    """No user with this platform and id has been seen."""

    def __init__(self, *, platform: str, platform_user_id: str) -> None:
        super().__init__(f"no such user: {platform}:{platform_user_id}")
        self.platform = platform
        self.platform_user_id = platform_user_id


class InvalidGrantError(StorageError, ValueError):
    """A quota override is negative or otherwise out of range."""

    def __init__(self, *, field: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {field} {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class InvalidJobRequestError(StorageError, ValueError):
    """A job request has a malformed hash, a negative size or duration, and so on."""


class InvalidStoredOrderError(StorageError, ValueError):
    """A job's order (``storage.order``) has a value no job can have: refused when written,
    and raised when read from a row changed outside the bot, rather than guessed at."""


class InvalidIntakeError(StorageError, ValueError):
    """An accepted song cannot be recorded: no file reference, or one too long to keep."""


class IntakeExistsError(StorageError):
    """The song is on record already: the platform delivered its message again (Telegram
    does when a crash came before the update was confirmed)."""

    def __init__(self, *, intake_id: int) -> None:
        super().__init__(f"song already accepted as {intake_id}")
        self.intake_id = intake_id


class JobNotFoundError(StorageError, LookupError):
    """No job with this id (or this control token) exists."""

    def __init__(self, *, job_id: int | None = None, control_token: str | None = None) -> None:
        what = f"no such job: {job_id}" if control_token is None else "no job with that token"
        super().__init__(what)
        self.job_id = job_id
        self.control_token = control_token


class JobStateError(StorageError):
    """The job cannot move to the requested status from its current one.

    This is what stops a finished job from being refunded twice: a job that is already
    failed, cancelled or done cannot be failed or cancelled again.
    """

    def __init__(self, *, job_id: int, current: str, requested: str) -> None:
        super().__init__(f"job {job_id} is {current} and cannot become {requested}")
        self.job_id = job_id
        self.current = current
        self.requested = requested


class QuotaRefusedError(StorageError):
    """Base class for every reason a job is refused: before it is queued, or when its
    decoded length turns out longer than its header said (``store.jobs.settle_duration``).

    ``kind`` names the reason in job records and metrics, like the engine's errors.
    """

    kind = "quota"


class UserBannedError(QuotaRefusedError):
    """The user is banned; nothing is reserved."""

    kind = "banned"

    def __init__(self, *, platform: str, platform_user_id: str) -> None:
        super().__init__(f"user {platform}:{platform_user_id} is banned")
        self.platform = platform
        self.platform_user_id = platform_user_id


class SongTooLongError(QuotaRefusedError):
    """The song is longer than this user's maximum song duration."""

    kind = "song_too_long"

    def __init__(self, *, duration_seconds: float, max_seconds: float) -> None:
        super().__init__(
            f"the song lasts {duration_seconds / 60:.1f} min; the limit is {max_seconds / 60:g} min"
        )
        self.duration_seconds = duration_seconds
        self.max_seconds = max_seconds


class TooManyConcurrentJobsError(QuotaRefusedError):
    """The user already has as many queued or running jobs as allowed."""

    kind = "too_many_jobs"

    def __init__(self, *, active: int, limit: int) -> None:
        super().__init__(f"{active} jobs are already queued or running; the limit is {limit}")
        self.active = active
        self.limit = limit


class QuotaExceededError(QuotaRefusedError):
    """A rolling 24 h limit would be exceeded by this job.

    Attributes:
        limit: which limit (``songs_per_day`` or ``audio_minutes_per_day``).
        remaining: what is left of that limit now (songs, or audio minutes).
        frees_at: when enough of it frees up for this job (UTC), or None if it never
            will (a limit of zero).
    """

    kind = "quota_exceeded"

    def __init__(
        self, *, limit: QuotaLimitName, remaining: float, frees_at: datetime | None
    ) -> None:
        unit = "songs" if limit == "songs_per_day" else "audio minutes"
        when = f"; enough frees up at {frees_at:%Y-%m-%d %H:%M} UTC" if frees_at else ""
        super().__init__(f"daily limit reached: {remaining:g} {unit} left{when}")
        self.limit = limit
        self.remaining = remaining
        self.frees_at = frees_at


class InvalidLyricsError(StorageError, ValueError):
    """Lyrics the store will not keep: empty, too long, or of an unknown source
    (``storage.lyrics``). The bot cleans and bounds lyrics first, so this is a bug."""


class UploadTooLargeError(StorageError, ValueError):
    """An upload is larger than the byte limit; nothing is kept."""

    def __init__(self, *, max_bytes: int) -> None:
        super().__init__(f"the upload is larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


class InvalidCacheKeyError(StorageError, ValueError):
    """A job's cache key does not fit its column (``store.jobs.mark_done``)."""

    def __init__(self, *, value: str, reason: str) -> None:
        super().__init__(f"invalid cache key {value!r}: {reason}")
        self.value = value
        self.reason = reason


class QueueSchemaVersionError(StorageError):
    """The installed procrastinate is not the version whose schema the migrations apply.

    The worker and the front-ends check this at start (``storage.queue_schema``), so a
    mismatch stops a process with this sentence instead of failing jobs later on a
    missing or changed SQL function.
    """

    def __init__(self, *, installed: str, expected: str) -> None:
        super().__init__(
            f"procrastinate {installed} is installed, but the database schema is for "
            f"procrastinate {expected} (install procrastinate=={expected}, or upgrade "
            "karaoke-bot to a version whose migrations match)"
        )
        self.installed = installed
        self.expected = expected


class InvalidDeliveryClaimError(StorageError, ValueError):
    """A front-end id or lease length that a delivery claim cannot store or mean.

    Checked before the database sees it: PostgreSQL would refuse an id longer than its
    column while SQLite would keep it, and a lease of zero or less would be a claim that
    is over before it starts.
    """

    def __init__(self, *, field: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {field} {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason
