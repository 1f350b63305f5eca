"""Everything the bot must remember: users, jobs, quotas and the uploads they start from.

The database is an embedded SQLite file by default (no server needed on one machine);
any async SQLAlchemy URL works, PostgreSQL through asyncpg included. Callers use
:class:`Store` and the plain records below; sessions and ORM objects stay inside.
``storage`` never imports ``bot``: the bot converts its settings into these values.

:class:`Store` and :func:`parse_user_ref` come with SQLAlchemy and alembic (about 0.45 s
to import on the 2-core machine): they are imported when first named, so that the
settings, which name the plain records, cost a one-shot ``karaoke-bot separate`` nothing
of the database it never opens (issue 26).
"""

from typing import TYPE_CHECKING

from storage.errors import (
    DatabaseError,
    DatabaseOpenError,
    DataDirError,
    InvalidCacheKeyError,
    InvalidGrantError,
    InvalidJobRequestError,
    InvalidStoredOrderError,
    InvalidUserRefError,
    JobNotFoundError,
    JobStateError,
    QuotaExceededError,
    QuotaRefusedError,
    SongTooLongError,
    StorageError,
    TooManyConcurrentJobsError,
    UploadTooLargeError,
    UserBannedError,
    UserNotFoundError,
)
from storage.files import FileStore, SavedUpload
from storage.order import StoredControls, StoredOrder
from storage.records import (
    PLATFORMS,
    ChatRef,
    CleanupReport,
    JobRecord,
    JobRequest,
    JobStatus,
    Platform,
    QuotaLimits,
    QuotaStatus,
    RecoveredJob,
    RecoveryAction,
    Stats,
    TopUser,
    UserRecord,
)

if TYPE_CHECKING:
    from storage.store import Store
    from storage.users import parse_user_ref


def __getattr__(name: str) -> object:
    """``Store`` and ``parse_user_ref``, imported on first use (see the module docstring)."""
    if name == "Store":
        from storage.store import Store

        return Store
    if name == "parse_user_ref":
        from storage.users import parse_user_ref

        return parse_user_ref
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PLATFORMS",
    "ChatRef",
    "CleanupReport",
    "DataDirError",
    "DatabaseError",
    "DatabaseOpenError",
    "FileStore",
    "InvalidCacheKeyError",
    "InvalidGrantError",
    "InvalidJobRequestError",
    "InvalidStoredOrderError",
    "InvalidUserRefError",
    "JobNotFoundError",
    "JobRecord",
    "JobRequest",
    "JobStateError",
    "JobStatus",
    "Platform",
    "QuotaExceededError",
    "QuotaLimits",
    "QuotaRefusedError",
    "QuotaStatus",
    "RecoveredJob",
    "RecoveryAction",
    "SavedUpload",
    "SongTooLongError",
    "Stats",
    "StorageError",
    "Store",
    "StoredControls",
    "StoredOrder",
    "TooManyConcurrentJobsError",
    "TopUser",
    "UploadTooLargeError",
    "UserBannedError",
    "UserNotFoundError",
    "UserRecord",
    "parse_user_ref",
]
