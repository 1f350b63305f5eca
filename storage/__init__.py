"""Everything the bot must remember: users, jobs, quotas and the uploads they start from.

The database is an embedded SQLite file by default (no server needed on one machine);
any async SQLAlchemy URL works, PostgreSQL through asyncpg included. Callers use
:class:`Store` and the plain records below; sessions and ORM objects stay inside.
``storage`` never imports ``bot``: the bot converts its settings into these values.
"""

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
from storage.store import Store
from storage.users import parse_user_ref

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
