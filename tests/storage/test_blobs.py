"""The blob store: the same behaviour tests on a folder and on a real S3 server.

Every test taking ``store`` runs twice: on :class:`LocalBlobStore` in a temporary folder
and on :class:`S3BlobStore` against the session's ``s3_server`` (SeaweedFS, or
``KARAOKE_TEST_S3_URL``). The S3 bucket is shared by the session, so each test keeps its
keys under a prefix of its own (``ns``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import stat
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

import bot.distributed.blobs.atomic
from bot.distributed.blobs import (
    BlobStore,
    LocalBlobStore,
    S3BlobStore,
    open_blob_store,
    validate_key,
)
from bot.distributed.errors import BlobNotFoundError, BlobStoreError, InvalidBlobKeyError
from storage.errors import StorageError
from tests.support.s3 import S3Server

MIB = 1024 * 1024
PART_SIZE = 5 * MIB
BIG_SIZE = 12 * MIB  # three parts: 5 + 5 + 2 MiB

BAD_KEYS = ["../x", "/abs", "a//b", "a b", "", "a/", "a/../b", ".hidden", "a/.tmp", "ä", "x" * 513]


def s3_store(server: S3Server, **overrides: Any) -> S3BlobStore:
    options: dict[str, Any] = {
        "endpoint_url": server.endpoint_url,
        "bucket": server.bucket,
        "region": server.region,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        "part_size_bytes": PART_SIZE,
    }
    options.update(overrides)
    return S3BlobStore(**options)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BlobStore]:
    if backend == "local":
        blobs: BlobStore = LocalBlobStore(tmp_path / "blobs")
    else:
        blobs = s3_store(request.getfixturevalue("s3_server"))
    try:
        yield blobs
    finally:
        await blobs.close()


@pytest.fixture
def ns() -> str:
    """A key prefix of this test's own (the S3 bucket is shared by the session)."""
    return f"t-{uuid.uuid4().hex[:12]}/"


def write_random(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hidden_files(root: Path) -> list[Path]:
    return [path for path in root.rglob(".*") if path.is_file()]


def admin_client(server: S3Server) -> Any:
    """A plain aiobotocore client, to look at the bucket behind the store's back."""
    return get_session().create_client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=AioConfig(s3={"addressing_style": "path"}),
    )


async def pending_uploads(server: S3Server, prefix: str) -> list[str]:
    """Keys of multipart uploads started but neither completed nor aborted."""
    async with admin_client(server) as client:
        response = await client.list_multipart_uploads(Bucket=server.bucket, Prefix=prefix)
    return [upload.get("Key", "") for upload in response.get("Uploads", [])]


@pytest.fixture
def failing_read(monkeypatch: pytest.MonkeyPatch) -> Callable[[BaseException], None]:
    """Make the second read of a file being stored raise ``error`` (the first succeeds,
    so the failure comes midway: after a 1 MiB chunk, or after a whole 5 MiB part)."""

    def install(error: BaseException) -> None:
        real = bot.distributed.blobs.atomic.read_chunk
        calls = 0

        def read(reader: IO[bytes], size: int) -> bytes:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise error
            return real(reader, size)

        monkeypatch.setattr(bot.distributed.blobs.atomic, "read_chunk", read)

    return install


# --- round trips ---------------------------------------------------------------------


async def test_bytes_round_trip_and_overwrite(store: BlobStore, ns: str) -> None:
    await store.put_bytes(f"{ns}results/abc/manifest.json", b'{"stems": 2}')
    assert await store.get_bytes(f"{ns}results/abc/manifest.json") == b'{"stems": 2}'
    await store.put_bytes(f"{ns}results/abc/manifest.json", b"second")
    assert await store.get_bytes(f"{ns}results/abc/manifest.json") == b"second"
    await store.put_bytes(f"{ns}empty", b"")
    assert await store.get_bytes(f"{ns}empty") == b""


async def test_small_file_round_trip(store: BlobStore, ns: str, tmp_path: Path) -> None:
    source = tmp_path / "song.mp3"
    digest = write_random(source, 300_000)
    await store.put_file(f"{ns}inputs/{digest}", source)
    target = tmp_path / "out" / "deeper" / "song.mp3"  # missing folders are created
    await store.get_file(f"{ns}inputs/{digest}", target)
    assert sha256_of(target) == digest
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert hidden_files(tmp_path / "out") == []


async def test_large_file_round_trip_uses_parts(
    store: BlobStore, backend: str, ns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "long.wav"
    digest = write_random(source, BIG_SIZE)
    read_sizes: list[int] = []
    real = bot.distributed.blobs.atomic.read_chunk

    def counting(reader: IO[bytes], size: int) -> bytes:
        data = real(reader, size)
        read_sizes.append(len(data))
        return data

    monkeypatch.setattr(bot.distributed.blobs.atomic, "read_chunk", counting)
    await store.put_file(f"{ns}inputs/{digest}", source)
    if backend == "s3":
        # One read per part, each at most a part: memory stays bounded by the part size.
        assert read_sizes == [PART_SIZE, PART_SIZE, BIG_SIZE - 2 * PART_SIZE]
    target = tmp_path / "copy.wav"
    target.write_bytes(b"an older copy")  # replaced whole
    await store.get_file(f"{ns}inputs/{digest}", target)
    assert sha256_of(target) == digest
    assert await store.list_keys(ns) == [f"{ns}inputs/{digest}"]


async def test_multipart_object_is_whole_on_the_server(
    s3_server: S3Server, ns: str, tmp_path: Path
) -> None:
    """The completed multipart object reads back as one object of the full size."""
    source = tmp_path / "long.wav"
    write_random(source, BIG_SIZE)
    store = s3_store(s3_server)
    try:
        await store.put_file(f"{ns}big", source)
        assert len(await store.get_bytes(f"{ns}big")) == BIG_SIZE
    finally:
        await store.close()
    async with admin_client(s3_server) as client:
        head = await client.head_object(Bucket=s3_server.bucket, Key=f"{ns}big")
    assert head["ContentLength"] == BIG_SIZE
    assert head["ETag"].strip('"').endswith("-3")  # S3's mark of a 3-part upload
    assert await pending_uploads(s3_server, ns) == []


# --- missing blobs, exists, delete ---------------------------------------------------


async def test_missing_blob(store: BlobStore, ns: str, tmp_path: Path) -> None:
    with pytest.raises(BlobNotFoundError) as caught:
        await store.get_bytes(f"{ns}inputs/nothing")
    assert caught.value.key == f"{ns}inputs/nothing"
    assert isinstance(caught.value, LookupError)
    assert isinstance(caught.value, StorageError)
    target = tmp_path / "keep.txt"
    target.write_bytes(b"mine")
    with pytest.raises(BlobNotFoundError):
        await store.get_file(f"{ns}inputs/nothing", target)
    assert target.read_bytes() == b"mine"
    assert hidden_files(tmp_path) == []


async def test_exists(store: BlobStore, ns: str) -> None:
    assert not await store.exists(f"{ns}a/b")
    await store.put_bytes(f"{ns}a/b", b"x")
    assert await store.exists(f"{ns}a/b")
    assert not await store.exists(f"{ns}a")  # a "folder" is not a blob


async def test_delete_and_delete_missing(store: BlobStore, ns: str) -> None:
    await store.put_bytes(f"{ns}a/b/c", b"x")
    await store.delete(f"{ns}a/b/c")
    assert not await store.exists(f"{ns}a/b/c")
    await store.delete(f"{ns}a/b/c")  # already gone: fine
    await store.delete(f"{ns}never/there")
    assert await store.list_keys(ns) == []


async def test_a_listing_gives_each_blobs_size_and_when_it_was_written(
    store: BlobStore, ns: str
) -> None:
    """What the shared cache's byte limit and its sweep of unfinished results measure."""
    before = time.time()
    await store.put_bytes(f"{ns}r/big", b"x" * 3000)
    await store.put_bytes(f"{ns}r/small", b"y")
    listed = await store.list_blobs(f"{ns}r/")
    assert [(blob.key, blob.size) for blob in listed] == [(f"{ns}r/big", 3000), (f"{ns}r/small", 1)]
    assert all(before - 5 <= blob.modified <= time.time() + 5 for blob in listed)


async def test_list_keys_and_delete_prefix(store: BlobStore, ns: str) -> None:
    keys = [f"{ns}a/1", f"{ns}a/2", f"{ns}a/sub/3", f"{ns}ab/4", f"{ns}b/5"]
    for key in reversed(keys):
        await store.put_bytes(key, key.encode())
    assert await store.list_keys(ns) == keys  # sorted
    assert await store.list_keys(f"{ns}a/") == keys[:3]
    assert await store.list_keys(f"{ns}a") == keys[:4]  # a plain string prefix, as in S3
    assert await store.list_keys(f"{ns}a/su") == [f"{ns}a/sub/3"]
    assert await store.list_keys(f"{ns}zzz/") == []
    assert await store.delete_prefix(f"{ns}a/") == 3
    assert await store.list_keys(ns) == keys[3:]
    assert await store.delete_prefix(f"{ns}a/") == 0
    assert await store.delete_prefix(ns) == 2
    assert await store.list_keys(ns) == []


async def test_delete_prefix_refuses_everything(store: BlobStore) -> None:
    with pytest.raises(ValueError, match="every blob"):
        await store.delete_prefix("")


# --- keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", BAD_KEYS)
def test_validate_key_refuses(key: str) -> None:
    with pytest.raises(InvalidBlobKeyError):
        validate_key(key)


def test_validate_key_accepts() -> None:
    for key in ["inputs/" + "a" * 64, "results/k3y_1/manifest.json", "a-b.c/D_e", "x" * 512]:
        assert validate_key(key) == key


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a b"])
async def test_every_method_validates(store: BlobStore, key: str, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    calls = [
        store.put_file(key, source),
        store.put_bytes(key, b"x"),
        store.get_file(key, tmp_path / "out"),
        store.get_bytes(key),
        store.exists(key),
        store.delete(key),
        store.delete_prefix(key),
        store.list_keys(key),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            await call
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "x").exists()


# --- atomicity -----------------------------------------------------------------------


@pytest.mark.parametrize("error", [OSError(5, "Input/output error"), asyncio.CancelledError()])
async def test_failed_put_leaves_nothing(
    store: BlobStore,
    backend: str,
    ns: str,
    tmp_path: Path,
    failing_read: Callable[[BaseException], None],
    error: BaseException,
    request: pytest.FixtureRequest,
) -> None:
    """A source that fails midway (an I/O error, or the task being cancelled) leaves no
    object, no temporary file and no pending multipart upload."""
    source = tmp_path / "long.wav"
    write_random(source, BIG_SIZE)
    failing_read(error)
    with pytest.raises(type(error)):
        await store.put_file(f"{ns}inputs/broken", source)
    assert not await store.exists(f"{ns}inputs/broken")
    assert await store.list_keys(ns) == []
    if backend == "local":
        assert isinstance(store, LocalBlobStore)
        assert hidden_files(store.root) == []
    else:
        assert await pending_uploads(request.getfixturevalue("s3_server"), ns) == []


async def test_failed_put_keeps_the_previous_blob(
    store: BlobStore, ns: str, tmp_path: Path, failing_read: Callable[[BaseException], None]
) -> None:
    await store.put_bytes(f"{ns}inputs/x", b"the old one")
    source = tmp_path / "long.wav"
    write_random(source, BIG_SIZE)
    failing_read(OSError(5, "Input/output error"))
    with pytest.raises(OSError):
        await store.put_file(f"{ns}inputs/x", source)
    assert await store.get_bytes(f"{ns}inputs/x") == b"the old one"


async def test_local_failed_get_keeps_the_target(
    tmp_path: Path, failing_read: Callable[[BaseException], None]
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    source = tmp_path / "long.wav"
    write_random(source, 3 * MIB)
    await store.put_file("inputs/x", source)
    target = tmp_path / "out" / "x.wav"
    target.parent.mkdir()
    target.write_bytes(b"mine")
    failing_read(OSError(5, "Input/output error"))
    with pytest.raises(BlobStoreError, match="Input/output error"):
        await store.get_file("inputs/x", target)
    assert target.read_bytes() == b"mine"
    assert hidden_files(tmp_path / "out") == []


async def test_local_readers_never_see_temporaries(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.put_bytes("results/k/a.wav", b"x")
    (tmp_path / "blobs" / "results" / "k" / ".a.wav.123.tmp").write_bytes(b"half")
    assert await store.list_keys("") == ["results/k/a.wav"]
    assert await store.list_keys("results/k/") == ["results/k/a.wav"]


# --- the folder store ----------------------------------------------------------------


async def test_local_modes(tmp_path: Path) -> None:
    previous = os.umask(0)  # the store must not depend on a strict umask
    try:
        store = LocalBlobStore(tmp_path / "blobs")
        await store.put_bytes("results/k/manifest.json", b"{}")
        source = tmp_path / "f"
        source.write_bytes(b"x" * 10)
        await store.put_file("inputs/abc", source)
    finally:
        os.umask(previous)
    root = tmp_path / "blobs"
    for folder in [root, root / "results", root / "results" / "k", root / "inputs"]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for file in [root / "results" / "k" / "manifest.json", root / "inputs" / "abc"]:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


async def test_local_delete_prunes_empty_folders(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.put_bytes("results/k/a", b"x")
    await store.put_bytes("results/k/b", b"x")
    await store.put_bytes("results/other", b"x")
    assert await store.delete_prefix("results/k/") == 2
    assert not (tmp_path / "blobs" / "results" / "k").exists()
    assert (tmp_path / "blobs" / "results" / "other").exists()
    await store.delete("results/other")
    assert list((tmp_path / "blobs").iterdir()) == []  # the root itself stays


async def test_local_check(tmp_path: Path) -> None:
    await LocalBlobStore(tmp_path / "new" / "blobs").check()  # created on the way
    assert stat.S_IMODE((tmp_path / "new" / "blobs").stat().st_mode) == 0o700
    (tmp_path / "file").write_bytes(b"")
    broken = LocalBlobStore(tmp_path / "file" / "blobs")
    with pytest.raises(BlobStoreError) as caught:
        await broken.check()
    assert str(caught.value).startswith(f"blob store folder {tmp_path / 'file' / 'blobs'}: ")
    assert "\n" not in str(caught.value)


# --- check, errors, credentials ------------------------------------------------------


async def test_check_ok(store: BlobStore) -> None:
    await store.check()
    await store.check()  # again, on the same client


async def test_store_is_usable_after_close(store: BlobStore, ns: str) -> None:
    await store.put_bytes(f"{ns}x", b"1")
    await store.close()
    assert await store.get_bytes(f"{ns}x") == b"1"


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_s3_check_closed_port_fails_fast() -> None:
    port = unused_port()
    store = S3BlobStore(
        endpoint_url=f"http://127.0.0.1:{port}",
        bucket="karaoke",
        region="us-east-1",
        access_key_id="AKIDCLOSEDPORT",
        secret_access_key="closed-port-secret",
        part_size_bytes=PART_SIZE,
    )
    started = time.monotonic()
    try:
        with pytest.raises(BlobStoreError) as caught:
            await store.check()
    finally:
        await store.close()
    assert time.monotonic() - started < 8
    message = str(caught.value)
    assert f"cannot connect to http://127.0.0.1:{port}" in message
    assert "\n" not in message
    assert "AKIDCLOSEDPORT" not in message and "closed-port-secret" not in message


async def test_s3_operations_map_connection_errors() -> None:
    store = S3BlobStore(
        endpoint_url=f"http://127.0.0.1:{unused_port()}",
        bucket="karaoke",
        region="us-east-1",
        access_key_id="AKIDCLOSEDPORT",
        secret_access_key="closed-port-secret",
        part_size_bytes=PART_SIZE,
    )
    started = time.monotonic()
    try:
        with pytest.raises(BlobStoreError, match="put: cannot connect") as caught:
            await store.put_bytes("inputs/x", b"x")
    finally:
        await store.close()
    assert caught.value.key == "inputs/x"
    assert time.monotonic() - started < 15  # retried, but a bounded number of times


async def test_s3_wrong_secret_is_access_denied(s3_server: S3Server, ns: str) -> None:
    wrong_secret = "WRONG-" + s3_server.secret_access_key[::-1]
    store = s3_store(s3_server, secret_access_key=wrong_secret)
    try:
        with pytest.raises(BlobStoreError, match="access denied") as caught:
            await store.check()
        with pytest.raises(BlobStoreError, match="access denied") as caught_put:
            await store.put_bytes(f"{ns}x", b"x")
    finally:
        await store.close()
    for error in (caught.value, caught_put.value):
        text = f"{error} {error.reason} {error.store}"
        assert s3_server.access_key_id not in text
        assert wrong_secret not in text
        assert s3_server.secret_access_key not in text


async def test_s3_unknown_access_key_is_access_denied(s3_server: S3Server) -> None:
    store = s3_store(s3_server, access_key_id="AKIDNOBODYKNOWS", secret_access_key="nope-nope")
    try:
        with pytest.raises(BlobStoreError, match="access denied") as caught:
            await store.check()
    finally:
        await store.close()
    assert "AKIDNOBODYKNOWS" not in str(caught.value)
    assert "nope-nope" not in str(caught.value)


async def test_s3_missing_bucket(s3_server: S3Server) -> None:
    bucket = f"absent-{uuid.uuid4().hex[:8]}"
    store = s3_store(s3_server, bucket=bucket)
    try:
        with pytest.raises(BlobStoreError, match=f"bucket '{bucket}' does not exist"):
            await store.check()
    finally:
        await store.close()


def test_s3_describe_has_no_credentials() -> None:
    store = S3BlobStore(
        endpoint_url="https://user:url-password@s3.example.com:9000/?token=abc",
        bucket="karaoke",
        region="eu-west-1",
        access_key_id="AKIDDESCRIBE",
        secret_access_key="describe-secret",
        part_size_bytes=PART_SIZE,
    )
    for text in (store.describe(), repr(store)):
        assert text.endswith("s3 https://s3.example.com:9000 bucket karaoke") or text == (
            "S3BlobStore(s3 https://s3.example.com:9000 bucket karaoke)"
        )
        for secret in ("user", "url-password", "token", "AKIDDESCRIBE", "describe-secret"):
            assert secret not in text


def test_s3_store_refuses_bad_settings() -> None:
    options: dict[str, Any] = {
        "endpoint_url": "http://127.0.0.1:9000",
        "bucket": "karaoke",
        "region": "us-east-1",
        "access_key_id": "AKIDBADSETTINGS",
        "secret_access_key": "bad-settings-secret",
        "part_size_bytes": PART_SIZE,
    }
    for change in (
        {"part_size_bytes": PART_SIZE - 1},
        {"secret_access_key": None},
        {"endpoint_url": "ftp://example.com"},
        {"bucket": ""},
    ):
        with pytest.raises(ValueError) as caught:
            S3BlobStore(**{**options, **change})
        assert "AKIDBADSETTINGS" not in str(caught.value)
        assert "bad-settings-secret" not in str(caught.value)


def test_open_blob_store(tmp_path: Path) -> None:
    common: dict[str, Any] = {
        "folder": tmp_path / "blobs",
        "endpoint_url": "http://127.0.0.1:9000",
        "bucket": "karaoke",
        "region": "us-east-1",
        "access_key_id": None,
        "secret_access_key": None,
        "part_size_bytes": 8 * MIB,
    }
    local = open_blob_store("local", **common)
    assert isinstance(local, LocalBlobStore)
    assert local.describe() == f"folder {tmp_path / 'blobs'}"
    s3 = open_blob_store("s3", **common)
    assert isinstance(s3, S3BlobStore)
    assert s3.describe() == "s3 http://127.0.0.1:9000 bucket karaoke"
    assert s3.part_size_bytes == 8 * MIB
    with pytest.raises(ValueError, match="bucket"):
        open_blob_store("s3", **{**common, "bucket": None})
    with pytest.raises(ValueError, match="unknown blob store kind"):
        open_blob_store("ftp", **common)


def test_s3_server_startup_is_measured(s3_server: S3Server) -> None:
    """Not a behaviour test: reports how long the server took, with ``-s`` or ``-rA``."""
    print(f"S3 server {s3_server.endpoint_url}: ready in {s3_server.startup_seconds:.2f} s")
    assert s3_server.startup_seconds < 30
