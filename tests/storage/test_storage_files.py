"""Files: uploads, written atomically."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import FileStore, UploadTooLargeError


@pytest.fixture
async def files(tmp_path: Path) -> FileStore:
    store = FileStore(tmp_path / "data")
    await store.prepare()
    return store


def _visible(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


async def _stream(*chunks: bytes, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for index, chunk in enumerate(chunks):
        if fail_after is not None and index == fail_after:
            raise ConnectionResetError("the platform dropped the download")
        await asyncio.sleep(0)
        yield chunk


async def test_an_upload_from_bytes_is_saved_hashed_and_measured(files):
    data = b"RIFF" + bytes(range(256)) * 10
    saved = await files.save_upload(data, max_bytes=10_000)
    assert saved.path.parent == files.uploads_dir
    assert saved.path.read_bytes() == data
    assert saved.size_bytes == len(data)
    assert saved.sha256 == hashlib.sha256(data).hexdigest()
    assert _visible(files.uploads_dir) == [saved.path]


async def test_an_upload_from_a_stream_is_saved(files):
    saved = await files.save_upload(_stream(b"abc", b"def", b"g"), max_bytes=7)
    assert saved.path.read_bytes() == b"abcdefg"
    assert saved.sha256 == hashlib.sha256(b"abcdefg").hexdigest()


@pytest.mark.parametrize(
    "source", [b"x" * 11, _stream(b"xxxx", b"xxxx", b"xxxx")], ids=["bytes", "stream"]
)
async def test_an_upload_over_the_limit_is_refused_and_nothing_is_kept(files, source):
    with pytest.raises(UploadTooLargeError) as caught:
        await files.save_upload(source, max_bytes=10)
    assert caught.value.max_bytes == 10
    assert list(files.uploads_dir.iterdir()) == []


async def test_a_broken_stream_leaves_nothing_behind(files):
    with pytest.raises(ConnectionResetError):
        await files.save_upload(_stream(b"abc", b"def", fail_after=1), max_bytes=100)
    assert list(files.uploads_dir.iterdir()) == []


async def test_a_cancelled_upload_leaves_nothing_behind(files):
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            started.set()
            await asyncio.sleep(0.001)
            yield b"x" * 1000

    task = asyncio.create_task(files.save_upload(endless(), max_bytes=10**9))
    await started.wait()
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(files.uploads_dir.iterdir()) == []


async def test_uploads_share_one_neutral_extension_so_content_alone_picks_the_demuxer(files):
    first = await files.save_upload(b"#EXTM3U\n", max_bytes=10)
    second = await files.save_upload(b"x", max_bytes=10)
    assert first.path.parent == second.path.parent == files.uploads_dir
    assert first.path.suffix == second.path.suffix == ".upload"
    assert first.path != second.path


async def test_uploads_are_private(tmp_path):
    from storage.files import FileStore

    files = FileStore(tmp_path / "data")
    await files.prepare()
    saved = await files.save_upload(b"song bytes", max_bytes=100)
    assert saved.path.stat().st_mode & 0o777 == 0o600
    assert files.uploads_dir.stat().st_mode & 0o777 == 0o700
