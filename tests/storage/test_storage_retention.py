"""Retention: orphaned uploads and temporaries go; job records stay."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage import CleanupReport, JobStatus
from storage.retention import run_periodically


def _age(path: Path, moment: datetime) -> None:
    os.utime(path, (moment.timestamp(), moment.timestamp()))


async def test_orphaned_uploads_go_but_active_jobs_keep_theirs(
    store, clock, make_limits, make_request
):
    user = await store.users.upsert("telegram", "1", "Ann")
    active = await store.files.save_upload(b"in use", max_bytes=100)
    orphan = await store.files.save_upload(b"refused job", max_bytes=100)
    just_saved = await store.files.save_upload(b"about to be reserved", max_bytes=100)
    await store.jobs.reserve(user, make_request(input_path=active.path), make_limits())
    clock.now = datetime.now(UTC)
    for upload in (active, orphan):
        _age(upload.path, clock.now - timedelta(hours=5))

    assert (await store.upkeep.cleanup()).uploads_removed == 1
    assert active.path.exists()
    assert not orphan.path.exists()
    assert just_saved.path.exists()


async def test_stale_temporaries_are_removed(store, clock):
    probe = store.files.uploads_dir / ".probe.deadbeef.tmp"
    probe.write_bytes(b"")
    partial_upload = store.files.uploads_dir / ".abc.mp3.0123.tmp"
    partial_upload.write_bytes(b"half")
    writing_now = store.files.uploads_dir / ".def.mp3.4567.tmp"
    writing_now.write_bytes(b"in progress")
    clock.now = datetime.now(UTC)
    for path in (probe, partial_upload):
        _age(path, clock.now - timedelta(hours=3))

    assert (await store.upkeep.cleanup()).temporaries_removed == 2
    assert not probe.exists() and not partial_upload.exists()
    assert writing_now.exists()


async def test_job_records_outlive_their_files(store, clock, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    upload = await store.files.save_upload(b"song", max_bytes=100)
    job = await store.jobs.reserve(user, make_request(input_path=upload.path), make_limits())
    await store.jobs.mark_running(job.id)
    await store.jobs.mark_done(job.id, "result-key")
    clock.now = datetime.now(UTC) + timedelta(days=3)

    assert await store.upkeep.cleanup() == CleanupReport()
    assert not upload.path.exists()
    kept = await store.jobs.get(job.id)
    assert (kept.status, kept.cache_key) == (JobStatus.DONE, "result-key")
    assert (await store.stats.collect()).jobs_by_status["done"] == 1


async def test_the_periodic_helper_runs_until_cancelled_and_survives_failures():
    calls = 0
    fourth_call = asyncio.Event()

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk hiccup")
        if calls == 4:
            fourth_call.set()

    task = asyncio.create_task(run_periodically(flaky, timedelta(milliseconds=1)))
    await asyncio.wait_for(fourth_call.wait(), timeout=5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


async def test_the_store_cleanup_loop_removes_expired_files(store, clock):
    orphan = await store.files.save_upload(b"nobody wants me", max_bytes=100)
    clock.now = datetime.now(UTC)
    _age(orphan.path, clock.now - timedelta(hours=2))
    task = asyncio.create_task(store.upkeep.run_cleanup_every(timedelta(milliseconds=5)))
    try:
        for _ in range(200):
            if not orphan.path.exists():
                break
            await asyncio.sleep(0.01)
        assert not orphan.path.exists()
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_links_kept_source_is_a_hard_link_that_goes_like_an_orphan(store, clock):
    """The cache by source (``FileStore.keep_source``): no second copy, and bounded in
    time by the uploads' own retention."""
    upload = await store.files.save_upload(b"a song from a link", max_bytes=100)
    await store.files.keep_source(upload.path, {"url:http://a.example/s.mp3", "site:x:1"})
    kept = store.files.source_copy("site:x:1")
    assert kept.read_bytes() == b"a song from a link"
    assert os.stat(kept).st_ino == os.stat(upload.path).st_ino
    assert "a.example" not in store.files.source_copy("url:http://a.example/s.mp3").name
    await store.files.delete_upload(upload.path)  # its job ended
    assert kept.exists()
    clock.now = datetime.now(UTC) + timedelta(hours=2)
    assert (await store.upkeep.cleanup()).uploads_removed == 2
    assert list(store.files.uploads_dir.iterdir()) == []
