"""Files: uploads and content-addressed results, written atomically."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import FileStore, InvalidCacheKeyError, UploadTooLargeError

KEY = "ab12cd34ef56"


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


async def test_results_are_stored_under_their_key_and_found_again(files, tmp_path):
    vocals = tmp_path / "vocals.mp3"
    vocals.write_bytes(b"v" * 3_000_000)  # several chunks
    stored = await files.store_results(
        KEY, {"instrumental.mp3": b"instrumental", "vocals.mp3": vocals}
    )
    assert stored.directory == files.results_dir / "ab" / KEY
    assert sorted(stored.files) == ["instrumental.mp3", "vocals.mp3"]
    assert stored.files["vocals.mp3"].read_bytes() == vocals.read_bytes()
    assert vocals.exists()  # copied, not moved

    found = await files.lookup_results(KEY)
    assert found is not None
    assert found.files == stored.files
    assert _visible(files.results_dir) == sorted(stored.files.values())


async def test_a_missing_result_is_none(files):
    assert await files.lookup_results(KEY) is None


async def test_storing_a_key_twice_keeps_the_first_copy(files):
    first = await files.store_results(KEY, {"a.mp3": b"first"})
    again = await files.store_results(KEY, {"a.mp3": b"second"})
    assert again.files == first.files
    assert first.files["a.mp3"].read_bytes() == b"first"


async def test_racing_stores_of_one_key_leave_one_complete_copy(files):
    results = await asyncio.gather(
        *(files.store_results(KEY, {"a.mp3": b"same" * 1000}) for _ in range(5))
    )
    assert {tuple(result.files) for result in results} == {("a.mp3",)}
    assert [path.name for path in (files.results_dir / "ab").iterdir()] == [KEY]


async def test_a_failing_result_write_leaves_no_result(files, tmp_path):
    with pytest.raises(FileNotFoundError):
        await files.store_results(KEY, {"a.mp3": b"fine", "b.mp3": tmp_path / "does-not-exist.mp3"})
    assert await files.lookup_results(KEY) is None
    assert _visible(files.results_dir) == []


async def test_results_can_be_deleted(files):
    await files.store_results(KEY, {"a.mp3": b"x"})
    assert await files.delete_results(KEY) is True
    assert await files.lookup_results(KEY) is None
    assert await files.delete_results(KEY) is False


@pytest.mark.parametrize("key", ["../etc", "a", "a/b", ".hidden", "", "x" * 129, "ab\x00cd"])
async def test_keys_that_could_escape_are_typed_errors(files, key):
    with pytest.raises(InvalidCacheKeyError):
        await files.store_results(key, {"a.mp3": b"x"})
    with pytest.raises(InvalidCacheKeyError):
        await files.lookup_results(key)


@pytest.mark.parametrize("name", ["../a.mp3", "sub/a.mp3", ".hidden", ""])
async def test_file_names_that_could_escape_are_typed_errors(files, name):
    with pytest.raises(InvalidCacheKeyError):
        await files.store_results(KEY, {name: b"x"})


async def test_an_empty_result_is_refused(files):
    with pytest.raises(ValueError, match="at least one file"):
        await files.store_results(KEY, {})


async def test_uploads_and_results_are_private(tmp_path):
    from storage.files import FileStore

    files = FileStore(tmp_path / "data")
    await files.prepare()
    saved = await files.save_upload(b"song bytes", max_bytes=100)
    stored = await files.store_results("a" * 64, {"vocals.mp3": b"vocals"})
    assert saved.path.stat().st_mode & 0o777 == 0o600
    assert stored.files["vocals.mp3"].stat().st_mode & 0o777 == 0o600
    assert files.uploads_dir.stat().st_mode & 0o777 == 0o700
