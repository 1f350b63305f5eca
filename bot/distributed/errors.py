"""What the distributed backend's blob store refuses or cannot do.

They stay :class:`~storage.errors.StorageError` subclasses, so a process start that
reports any storage failure in one line reports an unreachable bucket the same way.
"""

from __future__ import annotations

from storage.errors import StorageError


class BlobStoreError(StorageError):
    """The blob store (an S3 bucket or a shared folder) failed or refused a request.

    Front-ends and workers on other hosts exchange audio only through this store, so
    its failures reach admins (``/readyz``, ``karaoke-bot check``) as well as logs.
    ``store`` is the store's :meth:`~bot.distributed.blobs.BlobStore.describe` text and
    ``reason`` a short cause; neither ever holds credentials, so the whole message can
    be logged or shown as is.
    """

    def __init__(self, *, store: str, reason: str, key: str | None = None) -> None:
        where = f" ({key})" if key is not None else ""
        super().__init__(f"blob store {store}{where}: {reason}")
        self.store = store
        self.reason = reason
        self.key = key


class BlobNotFoundError(BlobStoreError, LookupError):
    """No blob with this key: never written, deleted, or expired by the bucket's rules.

    Kept apart from other failures because callers react differently: a missing input
    fails one job, an unreachable store should be retried.
    """

    def __init__(self, *, store: str, key: str) -> None:
        super().__init__(store=store, reason="no such blob", key=key)


class InvalidBlobKeyError(StorageError, ValueError):
    """A blob key is empty, too long, has characters outside ``[A-Za-z0-9._/-]``, or
    segments that could escape the store's folder (``..``) or be mistaken for
    temporary files (a leading ``.``); see :func:`bot.distributed.blobs.validate_key`.

    A ``ValueError`` because a bad key is the caller's bug, not the store's failure.
    """

    def __init__(self, *, value: str, reason: str) -> None:
        super().__init__(f"invalid blob key {value!r}: {reason}")
        self.value = value
        self.reason = reason
