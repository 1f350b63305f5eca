"""The S3 store: blobs in one bucket of any S3-compatible object store."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit
from uuid import uuid4

import aiohttp

from bot.distributed.blobs.atomic import AtomicFile, read_exactly
from bot.distributed.blobs.base import CHECK_TIMEOUT_SECONDS, BlobInfo, BlobStore
from bot.distributed.blobs.keys import require_prefix, validate_key, validate_prefix
from bot.distributed.blobs.s3_client import (
    MISSING_KEY_CODES,
    S3_DELETE_BATCH,
    S3_IMPORT_ERROR,
    S3_MAX_PART_BYTES,
    S3_MAX_PARTS,
    S3_MIN_PART_BYTES,
    BotoCoreError,
    ClientError,
    client_config,
    content_md5,
    failure_detail,
    get_session,
    url_without_credentials,
)
from bot.distributed.errors import BlobNotFoundError, BlobStoreError
from storage.files import CHUNK_BYTES, make_private_dirs

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, GetObjectOutputTypeDef

logger = logging.getLogger(__name__)

PROBE_PREFIX = "probes/"
"""Where ``check()`` writes (and at once deletes) its empty probe objects."""
MIN_SCRUBBED_LENGTH = 6


class S3BlobStore(BlobStore):
    """Blobs in one bucket of an S3-compatible object store, through aiobotocore.

    One client (one connection pool) is created at first use and reused until
    :meth:`close`. Addressing is path-style (``http://host/bucket/key``), which every
    S3-compatible server (MinIO, SeaweedFS, Ceph...) understands without DNS per
    bucket. Requests time out (connect 5 s, read 60 s) and are tried at most 3 times,
    so a dead store fails a job in seconds instead of hanging it.

    Files larger than ``part_size_bytes`` are uploaded in parts of that size (one part
    in memory at a time), smaller ones in one ``PutObject``; either way the object
    appears whole or not at all. Downloads stream to disk in 1 MiB chunks.

    ``access_key_id``/``secret_access_key``: both or neither; with neither, botocore's
    usual chain applies (``AWS_ACCESS_KEY_ID``..., an instance role). They never appear
    in :meth:`describe`, logs or error messages (which are scrubbed of them, in case a
    server echoes one back).
    """

    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        part_size_bytes: int,
    ) -> None:
        if S3_IMPORT_ERROR is not None:
            raise RuntimeError(
                f"the S3 blob store needs aiobotocore ({S3_IMPORT_ERROR}): "
                "pip install 'karaoke-bot[distributed]'"
            )
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the S3 endpoint must be an http(s) URL, not {parts.scheme!r}")
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("give both an S3 access key id and its secret, or neither")
        if not S3_MIN_PART_BYTES <= part_size_bytes <= S3_MAX_PART_BYTES:
            raise ValueError(
                f"the S3 part size must be between {S3_MIN_PART_BYTES} (5 MiB) and "
                f"{S3_MAX_PART_BYTES} (5 GiB) bytes, not {part_size_bytes}"
            )
        if not bucket:
            raise ValueError("the S3 bucket name is empty")
        self.endpoint_url = url_without_credentials(endpoint_url)
        self.bucket = bucket
        self.region = region
        self.part_size_bytes = part_size_bytes
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._secrets = tuple(
            secret
            for secret in (access_key_id, secret_access_key, parts.username, parts.password)
            if secret
        )
        self._clients: dict[bool, S3Client] = {}
        self._exit_stack = AsyncExitStack()
        self._client_lock = asyncio.Lock()

    def describe(self) -> str:
        return f"s3 {self.endpoint_url} bucket {self.bucket}"

    def __repr__(self) -> str:
        return f"S3BlobStore({self.describe()})"

    async def _get_client(self, *, probe: bool = False) -> S3Client:
        """The shared client, created at first use; ``probe``: the one :meth:`check`
        uses, which tries once with short timeouts, so that a readiness probe reports
        the actual failure ("cannot connect") within seconds instead of retrying it."""
        async with self._client_lock:
            client = self._clients.get(probe)
            if client is None:
                config = client_config(self.region, probe=probe)
                client = await self._exit_stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        region_name=self.region,
                        aws_access_key_id=self._access_key_id,
                        aws_secret_access_key=self._secret_access_key,
                        config=config,
                    )
                )
                self._clients[probe] = client
            return client

    async def close(self) -> None:
        async with self._client_lock:
            stack, self._exit_stack = self._exit_stack, AsyncExitStack()
            self._clients.clear()
            await stack.aclose()

    # Errors ---------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        # Credentials too short to be real ("a", "test") would garble every message.
        for secret in self._secrets:
            if len(secret) >= MIN_SCRUBBED_LENGTH:
                text = text.replace(secret, "***")
        return text

    def _failure(self, exc: Exception, action: str, key: str | None) -> BlobStoreError:
        """A BlobStoreError with a one-line reason for a botocore/aiohttp failure."""
        detail = failure_detail(exc, endpoint_url=self.endpoint_url, bucket=self.bucket, key=key)
        return BlobStoreError(
            store=self.describe(), reason=self._scrub(f"{action}: {detail}"), key=key
        )

    @asynccontextmanager
    async def _errors(self, action: str, key: str | None = None) -> AsyncIterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError, aiohttp.ClientError) as exc:
            raise self._failure(exc, action, key) from None

    # Operations -------------------------------------------------------------------------

    async def put_file(self, key: str, path: Path) -> None:
        validate_key(key)
        reader = await asyncio.to_thread(open, path, "rb")
        try:
            size = os.fstat(reader.fileno()).st_size
            if size <= self.part_size_bytes:
                data = await asyncio.to_thread(read_exactly, reader, size)
                if len(data) != size:
                    raise OSError(f"{path} shrank while being uploaded")
                await self._put_object(key, data)
            else:
                await self._put_multipart(key, reader, size, path)
        finally:
            reader.close()

    async def put_bytes(self, key: str, data: bytes) -> None:
        validate_key(key)
        await self._put_object(key, bytes(data))

    async def _put_object(self, key: str, data: bytes) -> None:
        client = await self._get_client()
        async with self._errors("put", key):
            await client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentMD5=content_md5(data)
            )

    async def _put_multipart(self, key: str, reader: IO[bytes], size: int, path: Path) -> None:
        """Upload in parts; on any failure (cancellation included) abort the upload,
        so the bucket keeps neither an object nor orphaned parts."""
        count = -(-size // self.part_size_bytes)
        if count > S3_MAX_PARTS:
            raise BlobStoreError(
                store=self.describe(),
                reason=f"put: {size} bytes need {count} parts of {self.part_size_bytes} "
                f"bytes; S3 allows {S3_MAX_PARTS} (raise the part size)",
                key=key,
            )
        client = await self._get_client()
        async with self._errors("start multipart upload", key):
            created = await client.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id = created["UploadId"]
        try:
            parts: list[CompletedPartTypeDef] = []
            for number in range(1, count + 1):
                length = min(self.part_size_bytes, size - (number - 1) * self.part_size_bytes)
                data = await asyncio.to_thread(read_exactly, reader, length)
                if len(data) != length:
                    raise OSError(f"{path} shrank while being uploaded")
                async with self._errors(f"upload part {number} of {count}", key):
                    uploaded = await client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ContentMD5=content_md5(data),
                    )
                parts.append({"ETag": uploaded["ETag"], "PartNumber": number})
                del data
            async with self._errors("complete multipart upload", key):
                await client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            # Shielded: a second cancellation must not leave the parts behind.
            with suppress(asyncio.CancelledError):
                await asyncio.shield(self._abort(client, key, upload_id))
            raise

    async def _abort(self, client: S3Client, key: str, upload_id: str) -> None:
        try:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError, aiohttp.ClientError) as exc:
            # Only a bucket lifecycle rule for incomplete uploads can clean up now.
            logger.warning(
                "could not abort the multipart upload of %s: %s",
                key,
                self._failure(exc, "abort multipart upload", key).reason,
            )

    async def _get_object(self, key: str) -> GetObjectOutputTypeDef:
        client = await self._get_client()
        try:
            return await client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING_KEY_CODES:
                raise BlobNotFoundError(store=self.describe(), key=key) from None
            raise self._failure(exc, "get", key) from None
        except (BotoCoreError, aiohttp.ClientError) as exc:
            raise self._failure(exc, "get", key) from None

    async def get_file(self, key: str, path: Path) -> None:
        validate_key(key)
        response = await self._get_object(key)
        body = response["Body"]
        target = Path(path)
        out = AtomicFile(target)
        written = 0
        try:
            async with body:
                await asyncio.to_thread(make_private_dirs, target.parent)
                await asyncio.to_thread(out.open)
                buffered: list[bytes] = []
                buffered_bytes = 0
                while True:
                    async with self._errors("get", key):
                        chunk = await body.read(CHUNK_BYTES)
                    if chunk:
                        buffered.append(chunk)
                        buffered_bytes += len(chunk)
                    # Write in ~1 MiB pieces: one thread hop each, bounded memory.
                    if buffered and (buffered_bytes >= CHUNK_BYTES or not chunk):
                        await asyncio.to_thread(out.write, b"".join(buffered))
                        written += buffered_bytes
                        buffered, buffered_bytes = [], 0
                    if not chunk:
                        break
            expected = response.get("ContentLength")
            if expected is not None and written != expected:
                raise BlobStoreError(
                    store=self.describe(),
                    reason=f"get: the download ended after {written} of {expected} bytes",
                    key=key,
                )
            await asyncio.to_thread(out.commit)
        except BaseException:
            out.discard()  # plain calls: this must run in a cancelled task too
            raise

    async def get_bytes(self, key: str) -> bytes:
        validate_key(key)
        response = await self._get_object(key)
        async with response["Body"] as body, self._errors("get", key):
            return await body.read()

    async def exists(self, key: str) -> bool:
        validate_key(key)
        client = await self._get_client()
        try:
            await client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING_KEY_CODES:
                return False
            raise self._failure(exc, "exists", key) from None
        except (BotoCoreError, aiohttp.ClientError) as exc:
            raise self._failure(exc, "exists", key) from None
        return True

    async def delete(self, key: str) -> None:
        validate_key(key)
        client = await self._get_client()
        async with self._errors("delete", key):
            await client.delete_object(Bucket=self.bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        require_prefix(prefix)
        keys = await self.list_keys(prefix)
        client = await self._get_client()
        deleted = 0
        for start in range(0, len(keys), S3_DELETE_BATCH):
            batch = keys[start : start + S3_DELETE_BATCH]
            async with self._errors("delete", prefix):
                response = await client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise BlobStoreError(
                    store=self.describe(),
                    reason=self._scrub(
                        f"delete: {len(errors)} of {len(batch)} blobs not deleted "
                        f"({first.get('Code', '?')} on {first.get('Key', '?')})"
                    ),
                    key=prefix,
                )
            deleted += len(batch)
        return deleted

    async def list_blobs(self, prefix: str) -> list[BlobInfo]:
        validate_prefix(prefix)
        client = await self._get_client()
        blobs: list[BlobInfo] = []
        async with self._errors("list", prefix or None):
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                blobs.extend(
                    BlobInfo(item["Key"], item.get("Size", 0), item["LastModified"].timestamp())
                    for item in page.get("Contents", [])
                    if "Key" in item and "LastModified" in item
                )
        return sorted(blobs, key=lambda blob: blob.key)

    async def check(self) -> None:
        """Head the bucket (reachable, exists, credentials accepted), then write and
        delete an empty probe object (allowed to write), all within 5 s, trying once:
        the caller (a readiness probe, an admin) asks again if it wants to."""
        probe = f"{PROBE_PREFIX}{uuid4().hex}"
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                client = await self._get_client(probe=True)
                async with self._errors("head bucket"):
                    await client.head_bucket(Bucket=self.bucket)
                async with self._errors("write a probe", probe):
                    await client.put_object(Bucket=self.bucket, Key=probe, Body=b"")
                async with self._errors("delete a probe", probe):
                    await client.delete_object(Bucket=self.bucket, Key=probe)
        except TimeoutError:
            raise BlobStoreError(
                store=self.describe(),
                reason=f"no answer within {CHECK_TIMEOUT_SECONDS:g} s",
            ) from None
