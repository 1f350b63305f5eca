"""A job's lyrics are kept for its karaoke video, bounded, replaced, found again after
reopening, dropped by retention once the stems would be gone, and migrated up and down."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from storage import JobNotFoundError, Store
from storage.db import Database
from storage.errors import InvalidLyricsError
from storage.lyrics import MAX_LYRICS_CHARS
from storage.migrate import current_revision, head_revision
from tests.support.store import Backend, FakeClock, run_alembic

LRC = "[00:01.00]Hello world\n[00:03.50]Goodbye moon\n"


async def _done_job(store: Store, make_limits, make_request, user_id: str = "1") -> int:
    user = await store.users.upsert("telegram", user_id, "Ann")
    job = await store.jobs.reserve(user, make_request(), make_limits())
    await store.jobs.mark_running(job.id)
    await store.jobs.mark_done(job.id, cache_hit=False, cache_key="k" * 64)
    return job.id


async def test_lyrics_are_kept_per_job_and_replaced(store, make_limits, make_request, clock):
    job_id = await _done_job(store, make_limits, make_request)
    assert await store.lyrics.get(job_id) is None
    await store.lyrics.note_song(job_id, title="Song", artist="Band", text="plain", source="tags")
    clock.advance(minutes=5)
    await store.lyrics.put(job_id, LRC, "user")
    kept = await store.lyrics.get(job_id)
    assert kept is not None
    assert (kept.title, kept.artist, kept.text, kept.source, kept.stored_at) == (
        "Song", "Band", LRC, "user", clock.now
    )  # fmt: skip


async def test_a_song_without_words_keeps_its_credits_cut_to_size(store, make_limits, make_request):
    job_id = await _done_job(store, make_limits, make_request)
    await store.lyrics.note_song(job_id, title="T" * 1000, artist=None)
    kept = await store.lyrics.get(job_id)
    assert kept is not None
    assert (len(kept.title or ""), kept.artist, kept.text, kept.source) == (255, None, None, None)


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("", "user"),
        ("   \n", "user"),
        ("x" * (MAX_LYRICS_CHARS + 1), "user"),
        ("a\0b", "user"),
        ("words", "genius"),
    ],
    ids=["empty", "blank", "too-long", "nul", "unknown-source"],
)
async def test_what_the_table_must_not_hold_is_refused(
    store, make_limits, make_request, text, source
):
    job_id = await _done_job(store, make_limits, make_request)
    with pytest.raises(InvalidLyricsError):
        await store.lyrics.put(job_id, text, source)
    assert await store.lyrics.get(job_id) is None


async def test_lyrics_of_no_job_are_refused(store):
    with pytest.raises(JobNotFoundError):
        await store.lyrics.put(12345, LRC, "user")


async def test_the_longest_lyrics_are_kept_whole(store, make_limits, make_request):
    job_id = await _done_job(store, make_limits, make_request)
    longest = ("[00:01.00]" + "é" * 60 + "\n") * (MAX_LYRICS_CHARS // 71)
    await store.lyrics.put(job_id, longest, "lrclib")
    kept = await store.lyrics.get(job_id)
    assert kept is not None and kept.text == longest


async def test_retention_drops_lyrics_older_than_the_stems(
    backend: Backend, data_dir: Path, make_limits, make_request
):
    clock = FakeClock()
    store = await backend.open_store(data_dir, clock=clock, lyrics_max_age=timedelta(hours=6))
    try:
        old = await _done_job(store, make_limits, make_request)
        await store.lyrics.put(old, LRC, "user")
        clock.advance(hours=5)
        recent = await _done_job(store, make_limits, make_request)
        await store.lyrics.put(recent, LRC, "tags")
        clock.advance(hours=2)
        await store.upkeep.cleanup()
        assert await store.lyrics.get(old) is None
        assert await store.lyrics.get(recent) is not None
    finally:
        await store.close()


async def test_the_latest_done_song_is_the_users_own(store, make_limits, make_request, clock):
    first = await _done_job(store, make_limits, make_request)
    clock.advance(minutes=1)
    second = await _done_job(store, make_limits, make_request)
    clock.advance(minutes=1)
    await _done_job(store, make_limits, make_request, user_id="2")  # someone else's
    user = await store.users.get("telegram", "1")
    latest = await store.jobs.latest_done(user)
    assert latest is not None and latest.id == second != first
    queued = await store.jobs.reserve(user, make_request(), make_limits())
    assert (await store.jobs.latest_done(user)).id == second != queued.id  # type: ignore[union-attr]
    nobody = await store.users.upsert("telegram", "3", "Cy")
    assert await store.jobs.latest_done(nobody) is None


async def test_lyrics_survive_reopening_and_the_migration_goes_down_and_up(
    backend: Backend, data_dir: Path, database: Database, make_limits, make_request
) -> None:
    store = await backend.open_store(data_dir)
    try:
        job_id = await _done_job(store, make_limits, make_request)
        await store.lyrics.put(job_id, LRC, "user")
    finally:
        await store.close()
    store = await backend.open_store(data_dir)
    try:
        kept = await store.lyrics.get(job_id)
        assert kept is not None and kept.text == LRC
    finally:
        await store.close()

    await run_alembic(database, "downgrade", "0007")
    async with database.write_connection() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    assert "job_lyrics" not in tables and "jobs" in tables
    await run_alembic(database, "upgrade", "head")
    assert await current_revision(database) == head_revision() == "0008"
    store = await backend.open_store(data_dir)
    try:
        assert await store.lyrics.get(job_id) is None  # the table came back empty
        await store.lyrics.put(job_id, LRC, "lrclib")
    finally:
        await store.close()
