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
"""

from __future__ import annotations

import abc
import asyncio
import base64
import hashlib
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit
from uuid import uuid4

import aiohttp

from bot.distributed.errors import BlobNotFoundError, BlobStoreError, InvalidBlobKeyError
from storage.files import CHUNK_BYTES, TEMPORARY_SUFFIX, make_private_dirs

_S3_IMPORT_ERROR: ImportError | None = None
try:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )
except ImportError as exc:  # the "distributed" extra is not installed
    # The folder store works without it; S3BlobStore says what to install.
    _S3_IMPORT_ERROR = exc

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, GetObjectOutputTypeDef

logger = logging.getLogger(__name__)

MAX_KEY_LENGTH = 512
_KEY_CHARACTERS = re.compile(r"[A-Za-z0-9._/-]+")

S3_MIN_PART_BYTES = 5 * 1024 * 1024
"""S3 refuses parts smaller than this (except the last one)."""
S3_MAX_PART_BYTES = 5 * 1024 * 1024 * 1024
S3_MAX_PARTS = 10_000
S3_DELETE_BATCH = 1000
"""``DeleteObjects`` takes at most this many keys per request."""

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 60.0
MAX_ATTEMPTS = 3
"""Per request, retries included: a blip is ridden out, a dead store fails in seconds."""
CHECK_TIMEOUT_SECONDS = 5.0
"""``check()`` answers a readiness probe, which must not hang on a silent server."""
PROBE_PREFIX = "probes/"
"""Where ``check()`` writes (and at once deletes) its empty probe objects."""

PRIVATE_FILE_MODE = 0o600
MIN_SCRUBBED_LENGTH = 6


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid blob key, else raise.

    Keys look like ``inputs/<sha256>`` or ``results/<cachekey>/manifest.json``. The
    rules make a key mean the same in a bucket and in a folder: only
    ``[A-Za-z0-9._/-]`` (no spaces, nothing a shell or URL would need to quote), no
    leading ``/``, no empty segments (``a//b`` is one object on S3 but ``a/b`` on
    disk), no segment starting with ``.`` (``..`` would climb out of the folder store,
    and hidden names are its temporary files), and at most 512 characters.

    Raises:
        InvalidBlobKeyError: (a ``ValueError``) the key breaks a rule.
    """
    if not isinstance(key, str):
        raise InvalidBlobKeyError(value=repr(key), reason="not a string")
    if not key:
        raise InvalidBlobKeyError(value=key, reason="empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidBlobKeyError(value=key[:40] + "...", reason=f"over {MAX_KEY_LENGTH} chars")
    if not _KEY_CHARACTERS.fullmatch(key):
        raise InvalidBlobKeyError(value=key, reason="only A-Z a-z 0-9 . _ / - are allowed")
    if key.startswith("/"):
        raise InvalidBlobKeyError(value=key, reason="starts with /")
    for segment in key.split("/"):
        if not segment:
            raise InvalidBlobKeyError(value=key, reason="has an empty segment")
        if segment == "..":
            raise InvalidBlobKeyError(value=key, reason="has a .. segment")
        if segment.startswith("."):
            raise InvalidBlobKeyError(value=key, reason="has a segment starting with .")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if keys can start with it: empty, a valid key, or a valid key
    followed by ``/``.

    Raises:
        InvalidBlobKeyError: the prefix breaks a key rule.
    """
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


@dataclass(frozen=True)
class BlobInfo:
    """One stored blob, as a listing returns it."""

    key: str
    size: int
    modified: float
    """When it was written (Unix time)."""


class BlobStore(abc.ABC):
    """Named immutable-by-convention blobs; see the module docstring for the promises."""

    @abc.abstractmethod
    async def put_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key``; readers see all of it or nothing.

        Raises:
            OSError: ``path`` cannot be read (nothing is stored).
            BlobStoreError: the store failed (nothing is stored).
        """

    @abc.abstractmethod
    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; readers see all of it or nothing."""

    @abc.abstractmethod
    async def get_file(self, key: str, path: Path) -> None:
        """Write the blob to ``path`` (0600; missing folders are created 0700).

        The data goes to a temporary file in ``path``'s folder that is renamed over
        ``path`` once complete, so ``path`` is never half written; memory use does not
        grow with the blob's size.

        Raises:
            BlobNotFoundError: no such blob (``path`` is left as it was).
            OSError: ``path`` cannot be written.
        """

    @abc.abstractmethod
    async def get_bytes(self, key: str) -> bytes:
        """The whole blob, in memory: for small ones (manifests).

        Raises:
            BlobNotFoundError: no such blob.
        """

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Delete a blob; a missing one is fine (two cleaners may race)."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key starts with ``prefix`` (which must not be empty:
        wiping the whole store is never what a caller means); return how many."""

    async def list_keys(self, prefix: str) -> list[str]:
        """Sorted keys starting with ``prefix`` (plain string prefix, as in S3)."""
        return [blob.key for blob in await self.list_blobs(prefix)]

    @abc.abstractmethod
    async def list_blobs(self, prefix: str) -> list[BlobInfo]:
        """The blobs whose keys start with ``prefix``, sorted by key, with their sizes and
        when they were written: what a cache bounded by bytes and age measures."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Prove the store is reachable and writable (for ``/readyz`` and
        ``karaoke-bot check``), within a few seconds.

        Raises:
            BlobStoreError: with a one-line reason an admin can act on.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; the store may be used again afterwards."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the blobs are, for logs and admins; never includes credentials."""


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


# --- the folder store ---------------------------------------------------------------


class LocalBlobStore(BlobStore):
    """Blobs as files below ``root``: key ``a/b/c`` is the file ``root/a/b/c``.

    ``root`` may be a shared mount that workers on other hosts use too, so writes are
    renames within one folder (atomic on local disks and NFS alike) and a reader never
    sees a half-written file. Folders the store creates are 0700 and files 0600: this
    is users' music. Folders a delete leaves empty are removed, so ``results/<key>/``
    folders do not pile up.

    Unlike S3, a key cannot be both a blob and a folder (``a`` and ``a/b``); writing
    the second fails with :class:`BlobStoreError`. Keys as the bot builds them never
    clash that way.
    """

    def __init__(self, root: Path) -> None:
        # Absolute: the store must not move if the process changes its directory.
        self.root = Path(os.path.abspath(root))

    def describe(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _failure(self, exc: OSError, key: str | None = None) -> BlobStoreError:
        return BlobStoreError(
            store=self.describe(), reason=exc.strerror or type(exc).__name__, key=key
        )

    async def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        await asyncio.to_thread(self._put_file_sync, key, target, Path(path))

    def _put_file_sync(self, key: str, target: Path, source: Path) -> None:
        with open(source, "rb") as reader:

            def chunks() -> Iterator[bytes]:
                reader.seek(0)
                return _file_chunks(reader)

            self._store_sync(key, target, chunks)

    async def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        await asyncio.to_thread(self._store_sync, key, target, lambda: _bytes_chunks(data))

    def _store_sync(self, key: str, target: Path, chunks: Callable[[], Iterator[bytes]]) -> None:
        # A delete (maybe on another host) prunes folders it empties, so the folder we
        # just made can vanish before our temporary file is created in it: make it
        # again and retry. Nothing has been read from the source at that point.
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                make_private_dirs(target.parent)
                _copy_atomically_sync(chunks(), target)
                return
            except _ReadError as exc:
                raise exc.error from None  # the caller's file: not the store's fault
            except _WriteError as exc:
                vanished = isinstance(exc.error, FileNotFoundError) and exc.opening
                if vanished and attempt < attempts:
                    continue
                raise self._failure(exc.error, key) from None
            except OSError as exc:  # make_private_dirs
                raise self._failure(exc, key) from None

    async def get_file(self, key: str, path: Path) -> None:
        source = self._path(key)
        await asyncio.to_thread(self._get_file_sync, key, source, Path(path))

    def _get_file_sync(self, key: str, source: Path, target: Path) -> None:
        try:
            reader = open(source, "rb")  # closed by the with block below
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFoundError(store=self.describe(), key=key) from None
        except OSError as exc:
            raise self._failure(exc, key) from None
        with reader:
            make_private_dirs(target.parent)
            try:
                _copy_atomically_sync(_file_chunks(reader), target)
            except _ReadError as exc:
                raise self._failure(exc.error, key) from None
            except _WriteError as exc:
                raise exc.error from None  # the caller's file: not the store's fault

    async def get_bytes(self, key: str) -> bytes:
        source = self._path(key)
        try:
            return await asyncio.to_thread(source.read_bytes)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFoundError(store=self.describe(), key=key) from None
        except OSError as exc:
            raise self._failure(exc, key) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(self._delete_sync, path)
        except OSError as exc:
            raise self._failure(exc, key) from None

    def _delete_sync(self, path: Path) -> bool:
        try:
            os.remove(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        # Prune the folders this left empty, up to (not including) the root. rmdir
        # refuses a folder that is not empty, so a concurrent writer's folder survives.
        folder = path.parent
        while folder != self.root and self.root in folder.parents:
            try:
                os.rmdir(folder)
            except OSError:
                break
            folder = folder.parent
        return True

    async def delete_prefix(self, prefix: str) -> int:
        _require_prefix(prefix)
        deleted = 0
        for key in await self.list_keys(prefix):
            path = self._path(key)
            try:
                deleted += await asyncio.to_thread(self._delete_sync, path)
            except OSError as exc:
                raise self._failure(exc, key) from None
        return deleted

    async def list_blobs(self, prefix: str) -> list[BlobInfo]:
        validate_prefix(prefix)
        try:
            return await asyncio.to_thread(self._list_sync, prefix)
        except OSError as exc:
            raise self._failure(exc) from None

    def _list_sync(self, prefix: str) -> list[BlobInfo]:
        # Walk only the deepest folder the prefix names: "results/ab" -> results/.
        folder = prefix.rpartition("/")[0]
        base = self.root.joinpath(*folder.split("/")) if folder else self.root
        blobs: list[BlobInfo] = []

        def fail(exc: OSError) -> None:
            # A folder that does not exist (or vanished meanwhile) holds no keys.
            if not isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise exc

        for directory, dirnames, filenames in os.walk(base, onerror=fail):
            # Hidden names are temporaries or not ours (no key has a hidden segment).
            dirnames[:] = [name for name in dirnames if not name.startswith(".")]
            relative = Path(directory).relative_to(self.root).parts
            for name in filenames:
                if name.startswith("."):
                    continue
                key = "/".join((*relative, name))
                if key.startswith(prefix):
                    try:
                        stat = os.stat(os.path.join(directory, name))
                    except FileNotFoundError:  # deleted meanwhile
                        continue
                    blobs.append(BlobInfo(key, stat.st_size, stat.st_mtime))
        return sorted(blobs, key=lambda blob: blob.key)

    async def check(self) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._check_sync), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            raise BlobStoreError(
                store=self.describe(),
                reason=f"no answer within {CHECK_TIMEOUT_SECONDS:g} s (a hung mount?)",
            ) from None
        except OSError as exc:
            raise self._failure(exc) from None

    def _check_sync(self) -> None:
        make_private_dirs(self.root)
        probe = self.root / _temporary_name("probe")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
        os.remove(probe)

    async def close(self) -> None:
        return None


class _ReadError(Exception):
    """A copy's source failed; wraps the OSError so it is not taken for the target's."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _WriteError(Exception):
    """A copy's target failed; ``opening``: while creating the temporary file."""

    def __init__(self, error: OSError, *, opening: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.opening = opening


def _require_prefix(prefix: str) -> None:
    if not validate_prefix(prefix):
        raise InvalidBlobKeyError(value=prefix, reason="deleting every blob is refused")


def _temporary_name(name: str) -> str:
    # Same shape as storage.files' temporaries (hidden, .tmp), which retention knows.
    return f".{name}.{uuid4().hex[:12]}{TEMPORARY_SUFFIX}"


def _read_chunk(reader: IO[bytes], size: int) -> bytes:
    """One read from a file being copied or uploaded: the tests' seam to fail midway."""
    return reader.read(size)


def _read_exactly(reader: IO[bytes], size: int) -> bytes:
    """``size`` bytes from ``reader``, fewer only at the end of the file."""
    pieces: list[bytes] = []
    left = size
    while left > 0:
        piece = _read_chunk(reader, left)
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def _file_chunks(reader: IO[bytes]) -> Iterator[bytes]:
    while True:
        try:
            chunk = _read_chunk(reader, CHUNK_BYTES)
        except OSError as exc:
            raise _ReadError(exc) from exc
        if not chunk:
            return
        yield chunk


def _bytes_chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK_BYTES):
        yield bytes(view[start : start + CHUNK_BYTES])


class _AtomicFile:
    """A file written under a hidden temporary name beside ``target``, then renamed.

    ``commit`` fsyncs and renames; ``discard`` removes the temporary and never raises,
    so it can run on any failure, a cancelled task included.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.temporary = target.with_name(_temporary_name(target.name))
        self._file: IO[bytes] | None = None

    def open(self) -> None:
        descriptor = os.open(
            self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE
        )
        try:
            # Exactly 0600 whatever the umask: users' music, on what may be a shared host.
            os.fchmod(descriptor, PRIVATE_FILE_MODE)
        except BaseException:
            os.close(descriptor)
            self.discard()
            raise
        self._file = open(descriptor, "wb")  # closed by commit() or discard()

    def write(self, chunk: bytes) -> None:
        assert self._file is not None, "open() first"
        self._file.write(chunk)

    def commit(self) -> None:
        assert self._file is not None, "open() first"
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self.temporary, self.target)
        _fsync_dir(self.target.parent)

    def discard(self) -> None:
        if self._file is not None:
            with suppress(OSError):
                self._file.close()
            self._file = None
        with suppress(OSError):
            os.remove(self.temporary)


def _copy_atomically_sync(chunks: Iterator[bytes], target: Path) -> None:
    """Write ``chunks`` to ``target`` through an :class:`_AtomicFile`.

    Raises:
        _ReadError: from ``chunks`` (the source).
        _WriteError: the target could not be written; its temporary is gone.
    """
    out = _AtomicFile(target)
    try:
        try:
            out.open()
        except OSError as exc:
            raise _WriteError(exc, opening=True) from exc
        for chunk in chunks:
            try:
                out.write(chunk)
            except OSError as exc:
                raise _WriteError(exc) from exc
        try:
            out.commit()
        except OSError as exc:
            raise _WriteError(exc) from exc
    except BaseException:
        out.discard()
        raise


def _fsync_dir(directory: Path) -> None:
    # A rename is durable only once the folder holding it is synced; some filesystems
    # (and shared mounts) refuse to sync a folder, which costs durability, not data.
    with suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# --- the S3 store --------------------------------------------------------------------


_ACCESS_DENIED_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AllAccessDisabled",
    }
)
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


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
        if _S3_IMPORT_ERROR is not None:
            raise RuntimeError(
                f"the S3 blob store needs aiobotocore ({_S3_IMPORT_ERROR}): "
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
        self.endpoint_url = _url_without_credentials(endpoint_url)
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
                config = AioConfig(
                    region_name=self.region,
                    signature_version="s3v4",
                    s3={"addressing_style": "path"},
                    connect_timeout=CHECK_TIMEOUT_SECONDS / 2 if probe else CONNECT_TIMEOUT_SECONDS,
                    read_timeout=CHECK_TIMEOUT_SECONDS / 2 if probe else READ_TIMEOUT_SECONDS,
                    retries={"max_attempts": 1 if probe else MAX_ATTEMPTS, "mode": "standard"},
                    # Newer botocore adds CRC trailers many S3-compatible servers reject;
                    # bodies carry a Content-MD5 instead, which all of them check.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
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
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket" or (code in ("404", "NotFound") and key is None):
                detail = f"bucket {self.bucket!r} does not exist"
            elif code in _ACCESS_DENIED_CODES or status == 403:
                detail = (
                    f"access denied ({code or status}): "
                    "check the access key, secret and bucket policy"
                )
            else:
                message = str(error.get("Message") or "")
                detail = f"{code or status}" + (f": {message}" if message else "")
        elif isinstance(exc, EndpointConnectionError):
            detail = f"cannot connect to {self.endpoint_url}"
        elif isinstance(exc, ConnectTimeoutError):
            detail = f"connecting to {self.endpoint_url} timed out"
        elif isinstance(exc, ReadTimeoutError):
            detail = f"{self.endpoint_url} did not answer within {READ_TIMEOUT_SECONDS:g} s"
        elif isinstance(exc, NoCredentialsError):
            detail = "no credentials (set an access key id and secret)"
        elif isinstance(exc, aiohttp.ClientError):
            detail = f"connection to {self.endpoint_url} failed ({type(exc).__name__})"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        detail = " ".join(detail.split())  # one line, whatever the server sent
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
                data = await asyncio.to_thread(_read_exactly, reader, size)
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
                Bucket=self.bucket, Key=key, Body=data, ContentMD5=_content_md5(data)
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
                data = await asyncio.to_thread(_read_exactly, reader, length)
                if len(data) != length:
                    raise OSError(f"{path} shrank while being uploaded")
                async with self._errors(f"upload part {number} of {count}", key):
                    uploaded = await client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ContentMD5=_content_md5(data),
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
            if exc.response.get("Error", {}).get("Code") in _MISSING_KEY_CODES:
                raise BlobNotFoundError(store=self.describe(), key=key) from None
            raise self._failure(exc, "get", key) from None
        except (BotoCoreError, aiohttp.ClientError) as exc:
            raise self._failure(exc, "get", key) from None

    async def get_file(self, key: str, path: Path) -> None:
        validate_key(key)
        response = await self._get_object(key)
        body = response["Body"]
        target = Path(path)
        out = _AtomicFile(target)
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
            if exc.response.get("Error", {}).get("Code") in _MISSING_KEY_CODES:
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
        _require_prefix(prefix)
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


def _content_md5(data: bytes) -> str:
    # Integrity, not security: the server recomputes it and refuses a damaged body.
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _url_without_credentials(url: str) -> str:
    """``url`` without ``user:password@``, query or fragment: safe to log and show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
