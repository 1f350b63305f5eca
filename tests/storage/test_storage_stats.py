"""Statistics: jobs per status, audio processed, cache hit rate, top users."""

from __future__ import annotations

from datetime import timedelta

import pytest


async def test_stats_on_an_empty_store(store):
    stats = await store.stats.collect()
    assert stats.users == 0
    assert set(stats.jobs_by_status.values()) == {0}
    assert stats.audio_hours_processed == 0
    assert stats.cache_hit_rate is None
    assert stats.top_users == []


async def test_stats_add_up(store, clock, make_limits, make_request):
    ann = await store.users.upsert("telegram", "1", "Ann")
    bob = await store.users.upsert("discord", "2", "Bob")
    await store.users.upsert("discord", "3", "Idle")
    quota = make_limits(minutes=None, max_song_minutes=None)

    async def finished(user, seconds: float, *, hit: bool) -> None:
        job = await store.jobs.reserve(user, make_request(seconds=seconds), quota)
        await store.jobs.mark_running(job.id)
        await store.jobs.mark_done(job.id, f"key-{job.id}", cache_hit=hit)

    await finished(ann, 1800, hit=False)
    await finished(ann, 1800, hit=True)
    await finished(ann, 600, hit=False)
    await finished(bob, 3600, hit=True)
    failed = await store.jobs.reserve(bob, make_request(), quota)
    await store.jobs.mark_failed(failed.id, "oom")
    await store.jobs.reserve(bob, make_request(), quota)  # still queued

    stats = await store.stats.collect()
    assert stats.users == 3
    assert stats.jobs_by_status == {
        "queued": 1,
        "running": 0,
        "done": 4,
        "failed": 1,
        "cancelled": 0,
    }
    assert stats.audio_hours_processed == pytest.approx(2 + 1 / 6)
    assert stats.cache_hits == 2
    assert stats.cache_hit_rate == pytest.approx(0.5)
    assert [(u.platform, u.platform_user_id, u.jobs_done) for u in stats.top_users] == [
        ("telegram", "1", 3),
        ("discord", "2", 1),
    ]
    assert stats.top_users[0].audio_minutes == pytest.approx(70)

    assert len((await store.stats.collect(top=1)).top_users) == 1
    later = await store.stats.collect(since=clock.now + timedelta(seconds=1))
    assert later.jobs_by_status["done"] == 0
