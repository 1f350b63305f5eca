"""The blob store the settings ask for."""

from __future__ import annotations

from pathlib import Path

from bot.distributed.blobs.base import BlobStore
from bot.distributed.blobs.local import LocalBlobStore
from bot.distributed.blobs.s3 import S3BlobStore


def open_blob_store(
    kind: str,
    *,
    folder: Path,
    endpoint_url: str | None,
    bucket: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
    part_size_bytes: int,
) -> BlobStore:
    """The store the settings ask for: ``kind`` ``"local"`` (``folder``) or ``"s3"``.

    Plain values rather than the bot's settings object, because ``storage`` does not
    import ``bot``.

    Raises:
        ValueError: unknown kind, or "s3" without an endpoint or bucket.
    """
    if kind == "local":
        return LocalBlobStore(folder)
    if kind == "s3":
        if not endpoint_url or not bucket:
            raise ValueError("an s3 blob store needs an endpoint URL and a bucket")
        return S3BlobStore(
            endpoint_url=endpoint_url,
            bucket=bucket,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            part_size_bytes=part_size_bytes,
        )
    raise ValueError(f"unknown blob store kind {kind!r} (expected 'local' or 's3')")
