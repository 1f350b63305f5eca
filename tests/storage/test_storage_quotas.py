"""Quotas: rolling 24 h limits, overrides, admins, bans, refunds and what is left."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage import (
    JobStateError,
    QuotaExceededError,
    SongTooLongError,
    TooManyConcurrentJobsError,
    UserBannedError,
)


async def test_songs_per_day_is_a_rolling_window(store, clock, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(songs=3)
    first = await store.jobs.reserve(user, make_request(), quota)
    clock.advance(hours=1)
    await store.jobs.reserve(user, make_request(), quota)
    clock.advance(hours=1)
    await store.jobs.reserve(user, make_request(), quota)
    clock.advance(hours=1)

    with pytest.raises(QuotaExceededError) as refused:
        await store.jobs.reserve(user, make_request(), quota)
    assert refused.value.limit == "songs_per_day"
    assert refused.value.remaining == 0
    assert refused.value.frees_at == first.created_at + timedelta(hours=24)

    clock.now = refused.value.frees_at - timedelta(seconds=1)
    with pytest.raises(QuotaExceededError):
        await store.jobs.reserve(user, make_request(), quota)
    clock.now = refused.value.frees_at
    await store.jobs.reserve(user, make_request(), quota)


async def test_quota_status_says_what_is_left_and_when_it_frees_up(
    store, clock, make_limits, make_request
):
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(songs=3, minutes=10)
    await store.jobs.reserve(user, make_request(seconds=120), quota)
    clock.advance(minutes=5)
    await store.jobs.reserve(user, make_request(seconds=180), quota)

    status = await store.quotas.status(user, quota)
    assert status.songs_used == 2
    assert status.songs_left == 1
    assert status.audio_minutes_used == pytest.approx(5.0)
    assert status.audio_minutes_left == pytest.approx(5.0)
    assert status.active_jobs == 2
    assert status.frees_at == clock.start + timedelta(hours=24)
    assert status.frees_at.tzinfo is not None

    later = await store.quotas.status(user, quota, now=clock.start + timedelta(hours=24, minutes=1))
    assert (later.songs_used, later.songs_left) == (1, 2)
    assert later.frees_at == clock.start + timedelta(hours=24, minutes=5)


async def test_a_fresh_user_has_everything_left(store, make_limits):
    user = await store.users.upsert("discord", "9", "New")
    status = await store.quotas.status(user, make_limits(songs=4, minutes=30))
    assert (status.songs_used, status.songs_left, status.audio_minutes_left) == (0, 4, 30)
    assert status.frees_at is None


async def test_audio_minutes_refusal_says_when_enough_frees_up(
    store, clock, make_limits, make_request
):
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(minutes=10, max_song_minutes=10)
    await store.jobs.reserve(user, make_request(seconds=240), quota)  # at START
    clock.advance(hours=2)
    await store.jobs.reserve(user, make_request(seconds=240), quota)  # at START + 2 h
    clock.advance(hours=1)

    # 2 minutes are left; a 5 minute song needs 3 more, which the first charge frees.
    with pytest.raises(QuotaExceededError) as refused:
        await store.jobs.reserve(user, make_request(seconds=300), quota)
    assert refused.value.limit == "audio_minutes_per_day"
    assert refused.value.remaining == pytest.approx(2.0)
    assert refused.value.frees_at == clock.start + timedelta(hours=24)

    # A 2 minute song still fits.
    await store.jobs.reserve(user, make_request(seconds=120), quota)


async def test_a_limit_of_zero_never_frees_up(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    with pytest.raises(QuotaExceededError) as refused:
        await store.jobs.reserve(user, make_request(), make_limits(songs=0))
    assert refused.value.frees_at is None
    assert "0 songs left" in str(refused.value)


async def test_a_song_longer_than_the_users_limit_is_refused(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    with pytest.raises(SongTooLongError) as refused:
        await store.jobs.reserve(user, make_request(seconds=601), make_limits(max_song_minutes=10))
    assert (refused.value.duration_seconds, refused.value.max_seconds) == (601, 600)
    assert await store.jobs.active(user) == []


async def test_concurrent_jobs_are_limited_and_freed_by_finishing(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(concurrent=2)
    first = await store.jobs.reserve(user, make_request(), quota)
    await store.jobs.reserve(user, make_request(), quota)
    with pytest.raises(TooManyConcurrentJobsError) as refused:
        await store.jobs.reserve(user, make_request(), quota)
    assert (refused.value.active, refused.value.limit) == (2, 2)

    await store.jobs.mark_running(first.id)
    await store.jobs.mark_done(first.id, "key-1")
    await store.jobs.reserve(user, make_request(), quota)


async def test_banned_users_are_refused_and_unbanned_users_are_not(
    store, make_limits, make_request
):
    user = await store.users.upsert("telegram", "1", "Ann")
    await store.users.set_banned(user, True)
    with pytest.raises(UserBannedError, match="telegram:1 is banned"):
        await store.jobs.reserve(user, make_request(), make_limits())  # stale record, fresh ban
    assert (await store.quotas.status(user, make_limits())).is_banned
    await store.users.set_banned(user, False)
    await store.jobs.reserve(user, make_request(), make_limits())


async def test_admins_are_unlimited_but_still_counted(store, make_limits, make_request):
    user = await store.users.upsert("discord", "7", "Admin")
    await store.users.set_admin(user, True)
    quota = make_limits(songs=1, minutes=1, max_song_minutes=1, concurrent=1)
    for _ in range(3):
        await store.jobs.reserve(user, make_request(seconds=3600), quota)
    status = await store.quotas.status(user, quota)
    assert status.is_admin
    assert status.songs_used == 3
    assert status.songs_left is None and status.audio_minutes_left is None
    assert status.limits.max_concurrent_jobs is None


async def test_per_user_overrides_replace_the_platform_defaults(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(songs=1, max_song_minutes=5)
    user = await store.users.grant(user, songs_per_day=3, max_song_minutes=20)
    for _ in range(3):
        await store.jobs.reserve(user, make_request(seconds=1200), make_limits(songs=1))
    with pytest.raises(QuotaExceededError):
        await store.jobs.reserve(user, make_request(), quota)
    status = await store.quotas.status(user, quota)
    assert status.limits.songs_per_day == 3
    assert status.limits.max_song_minutes == 20
    assert status.limits.audio_minutes_per_day == 60  # not overridden

    user = await store.users.reset_limits(user)
    assert (await store.quotas.status(user, quota)).limits == quota


@pytest.mark.parametrize("end", ["failed", "cancelled"])
async def test_failed_and_cancelled_jobs_are_refunded_exactly_once(
    store, make_limits, make_request, end
):
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(songs=2, minutes=10)
    job = await store.jobs.reserve(user, make_request(seconds=240), quota)
    await store.jobs.mark_running(job.id)
    if end == "failed":
        await store.jobs.mark_failed(job.id, "decode_error")
    else:
        await store.jobs.mark_cancelled(job.id)
    status = await store.quotas.status(user, quota)
    assert (status.songs_used, status.audio_minutes_used) == (0, 0)

    for again in (store.jobs.mark_cancelled(job.id), store.jobs.mark_failed(job.id, "again")):
        with pytest.raises(JobStateError):
            await again
    assert (await store.quotas.status(user, quota)).songs_left == 2


async def test_racing_refunds_give_the_quota_back_once(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(songs=2)
    await store.jobs.reserve(user, make_request(), quota)  # stays charged
    job = await store.jobs.reserve(user, make_request(), quota)
    outcomes = await asyncio.gather(
        store.jobs.mark_failed(job.id, "timeout"),
        store.jobs.mark_cancelled(job.id),
        store.jobs.mark_failed(job.id, "timeout"),
        return_exceptions=True,
    )
    assert sum(not isinstance(outcome, Exception) for outcome in outcomes) == 1
    assert all(isinstance(o, JobStateError) for o in outcomes if isinstance(o, Exception))
    assert (await store.quotas.status(user, quota)).songs_left == 1


async def test_cache_hits_are_free_by_default(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(songs=1)
    job = await store.jobs.reserve(user, make_request(), quota)
    done = await store.jobs.mark_done(job.id, "abc123", cache_hit=True)
    assert done.cache_hit is True
    assert (await store.quotas.status(user, quota)).songs_left == 1


async def test_cache_hits_can_be_charged(backend, data_dir, clock, make_limits, make_request):
    store = await backend.open_store(data_dir, clock=clock, cache_hits_are_free=False)
    try:
        user = await store.users.upsert("telegram", "1", "Ann")
        quota = make_limits(songs=1)
        job = await store.jobs.reserve(user, make_request(), quota)
        await store.jobs.mark_done(job.id, "abc123", cache_hit=True)
        assert (await store.quotas.status(user, quota)).songs_left == 0
    finally:
        await store.close()


async def test_processed_jobs_stay_charged(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(songs=1)
    job = await store.jobs.reserve(user, make_request(), quota)
    await store.jobs.mark_running(job.id)
    await store.jobs.mark_done(job.id, "abc123", cache_hit=False)
    with pytest.raises(QuotaExceededError):
        await store.jobs.reserve(user, make_request(), quota)


async def test_refusal_order_ban_then_length_then_concurrency_then_daily(
    store, make_limits, make_request
):
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(songs=1, max_song_minutes=1, concurrent=1)
    await store.jobs.reserve(user, make_request(seconds=30), quota)
    too_long = make_request(seconds=120)
    with pytest.raises(SongTooLongError):
        await store.jobs.reserve(user, too_long, quota)
    with pytest.raises(TooManyConcurrentJobsError):
        await store.jobs.reserve(user, make_request(seconds=30), quota)
    await store.users.set_banned(user, True)
    with pytest.raises(UserBannedError):
        await store.jobs.reserve(user, too_long, quota)
