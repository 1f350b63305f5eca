"""Blobs: the audio that front-ends and GPU workers on other hosts hand each other.

In the distributed backend a front-end saves an upload as ``inputs/<sha256>``, a worker
on another host fetches it, separates it and stores ``results/<cachekey>/...`` for the
front-end to send. The database carries only keys; the bytes travel through a
:class:`BlobStore`:

* :class:`S3BlobStore`: any S3-compatible object store (AWS, MinIO, SeaweedFS...).
* :class:`LocalBlobStore`: a folder; on several hosts, a shared mount (NFS and the like).

Both keep the same promise, so callers never see half a blob: a reader gets the whole
object or "not found". S3 gives that for ``PutObject`` and for a completed multipart
upload; the folder store writes to a hidden temporary name and renames it into place.
A failed upload is cleaned up (temporary file removed, multipart upload aborted) before
the error propagates, so failures leave neither partial objects nor parts that a bucket
keeps billing for.

Errors: a bad key is the caller's bug (:class:`~bot.distributed.errors.InvalidBlobKeyError`, a
``ValueError``); a missing blob is :class:`~bot.distributed.errors.BlobNotFoundError`; anything
the store cannot do is :class:`~bot.distributed.errors.BlobStoreError`. An ``OSError`` on the
caller's own file (the source of ``put_file``, the target of ``get_file``) propagates
as is: that is the local disk's problem, not the store's. No message ever carries
credentials.

The package holds one concern per module: ``base`` (the contract), ``keys`` (what a key
may be), ``atomic`` (files written whole or not at all), ``local`` and ``s3`` (the two
stores; ``s3_client`` what S3 needs of aiobotocore) and ``opener`` (the one the
settings ask for). Callers import from the package.
"""

from bot.distributed.blobs.base import CHECK_TIMEOUT_SECONDS, BlobInfo, BlobStore
from bot.distributed.blobs.keys import MAX_KEY_LENGTH, validate_key, validate_prefix
from bot.distributed.blobs.local import LocalBlobStore
from bot.distributed.blobs.opener import open_blob_store
from bot.distributed.blobs.s3 import PROBE_PREFIX, S3BlobStore

__all__ = [
    "CHECK_TIMEOUT_SECONDS",
    "MAX_KEY_LENGTH",
    "PROBE_PREFIX",
    "BlobInfo",
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "open_blob_store",
    "validate_key",
    "validate_prefix",
]
