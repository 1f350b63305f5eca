"""The one refusal decision (``storage.quotas.refusal``): each refusal, their order and
when the quota frees, before the download (length unknown), at the reservation and when
an admitted song's decoded length is settled; and ``store.quotas.refusal``, which the chat
flow asks before downloading, agreeing with what the reservation then decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage import (
    QuotaExceededError,
    QuotaLimits,
    SongTooLongError,
    TooManyConcurrentJobsError,
    UserBannedError,
)
from storage.models import User
from storage.quotas import MIN_SONG_SECONDS, WINDOW, Charge, refusal, summarize

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _user(*, banned: bool = False) -> User:
    return User(platform="telegram", platform_user_id="1", is_banned=banned, is_admin=False)


def _limits(
    songs: int | None = None,
    minutes: float | None = None,
    max_song_minutes: float | None = None,
    concurrent: int | None = None,
) -> QuotaLimits:
    return QuotaLimits(
        songs_per_day=songs,
        audio_minutes_per_day=minutes,
        max_song_minutes=max_song_minutes,
        max_concurrent_jobs=concurrent,
    )


def _charges(*seconds: float, hours_apart: float = 1.0) -> list[Charge]:
    """One song each, ``hours_apart`` after one another from START."""
    return [
        Charge(START + timedelta(hours=hours_apart * n), 1, length, job_id=n + 1)
        for n, length in enumerate(seconds)
    ]


def _decide(
    limits: QuotaLimits,
    charges: list[Charge],
    seconds: float | None = None,
    *,
    active: int = 0,
    banned: bool = False,
    admitted: bool = False,
) -> Exception | None:
    user = _user(banned=banned)
    status = summarize(user, limits, charges, active)
    return refusal(user, status, charges, seconds, admitted=admitted)


def test_before_the_download_ban_then_in_progress_then_songs_then_minutes() -> None:
    everything_used = _limits(songs=2, minutes=4, concurrent=1)
    charges = _charges(120, 120)
    assert isinstance(_decide(everything_used, charges, active=1, banned=True), UserBannedError)
    assert isinstance(_decide(everything_used, charges, active=1), TooManyConcurrentJobsError)
    songs = _decide(everything_used, charges)
    assert isinstance(songs, QuotaExceededError) and songs.limit == "songs_per_day"
    minutes = _decide(_limits(songs=3, minutes=4), charges)
    assert isinstance(minutes, QuotaExceededError) and minutes.limit == "audio_minutes_per_day"
    assert _decide(_limits(songs=3, minutes=5), charges) is None


def test_a_known_length_is_checked_right_after_the_ban() -> None:
    limits = _limits(songs=1, minutes=1, max_song_minutes=1, concurrent=1)
    charges = _charges(60)
    assert isinstance(_decide(limits, charges, 90, active=1, banned=True), UserBannedError)
    assert isinstance(_decide(limits, charges, 90, active=1), SongTooLongError)
    assert isinstance(_decide(limits, charges, 60, active=1), TooManyConcurrentJobsError)
    assert _decide(_limits(minutes=5), charges, 60) is None


def test_before_the_download_a_user_needs_one_second_of_audio_time() -> None:
    limit_minutes = 4.0
    just_enough = _charges(limit_minutes * 60 - 1.5 * MIN_SONG_SECONDS)
    assert _decide(_limits(minutes=limit_minutes), just_enough) is None
    short = _charges(limit_minutes * 60 - MIN_SONG_SECONDS / 2)
    refused = _decide(_limits(minutes=limit_minutes), short)
    assert isinstance(refused, QuotaExceededError)
    assert refused.limit == "audio_minutes_per_day"
    assert refused.frees_at == START + WINDOW


def test_the_song_length_is_only_checked_once_known() -> None:
    assert _decide(_limits(max_song_minutes=1), []) is None
    refused = _decide(_limits(max_song_minutes=1), [], 61)
    assert isinstance(refused, SongTooLongError)
    assert (refused.duration_seconds, refused.max_seconds) == (61, 60)


def test_concurrency_is_refused_with_the_count_and_the_limit() -> None:
    refused = _decide(_limits(concurrent=2), [], active=2)
    assert isinstance(refused, TooManyConcurrentJobsError)
    assert (refused.active, refused.limit) == (2, 2)


def test_no_song_left_frees_when_the_oldest_charge_leaves_the_window() -> None:
    refused = _decide(_limits(songs=3), _charges(60, 60, 60))
    assert isinstance(refused, QuotaExceededError)
    assert (refused.remaining, refused.frees_at) == (0, START + WINDOW)


def test_a_lowered_limit_frees_when_enough_charges_have_left() -> None:
    """Three songs used against a limit lowered to two: one song frees when two have
    left the window, not when the first has."""
    refused = _decide(_limits(songs=2), _charges(60, 60, 60))
    assert isinstance(refused, QuotaExceededError)
    assert refused.frees_at == START + timedelta(hours=1) + WINDOW


def test_minutes_free_when_enough_for_the_song_has_left() -> None:
    charges = _charges(240, 240, hours_apart=2)  # 8 of 10 minutes used
    refused = _decide(_limits(minutes=10), charges, 300)  # needs 3 more
    assert isinstance(refused, QuotaExceededError)
    assert refused.remaining == pytest.approx(2.0)
    assert refused.frees_at == START + WINDOW
    refused = _decide(_limits(minutes=10), charges, 540)  # needs 7: both must leave
    assert isinstance(refused, QuotaExceededError)
    assert refused.frees_at == START + timedelta(hours=2) + WINDOW


@pytest.mark.parametrize(
    ("limits", "seconds"),
    [
        (_limits(songs=0), None),
        (_limits(minutes=0), None),
        (_limits(minutes=5), 360),  # longer than the whole daily allowance
    ],
)
def test_what_waiting_cannot_fix_frees_never(limits, seconds) -> None:
    refused = _decide(limits, _charges(60), seconds)
    assert isinstance(refused, QuotaExceededError)
    assert refused.frees_at is None


def test_an_admitted_song_is_only_checked_for_its_length() -> None:
    """Settling a decoded length: the song already holds its slot and its song, and a
    ban since it started does not stop it; its length and the minutes still count."""
    others = _charges(120)
    tight = _limits(songs=1, minutes=4, max_song_minutes=3, concurrent=1)

    def settle(seconds: float) -> Exception | None:
        return _decide(tight, others, seconds, active=1, banned=True, admitted=True)

    assert settle(120) is None
    assert isinstance(settle(181), SongTooLongError)
    short_of_minutes = settle(150)
    assert isinstance(short_of_minutes, QuotaExceededError)
    assert short_of_minutes.limit == "audio_minutes_per_day"


async def test_the_store_refuses_before_the_download_as_the_reservation_would(
    store, clock, make_limits, make_request
) -> None:
    user = await store.users.upsert("telegram", "1", "Ann")
    quota = make_limits(songs=2, minutes=10)
    assert await store.quotas.refusal(user, quota) is None
    first = await store.jobs.reserve(user, make_request(seconds=120), quota)
    clock.advance(hours=1)
    await store.jobs.reserve(user, make_request(seconds=120), quota)

    before = await store.quotas.refusal(user, quota)
    with pytest.raises(QuotaExceededError) as reserved:
        await store.jobs.reserve(user, make_request(seconds=60), quota)
    assert isinstance(before, QuotaExceededError)
    assert (before.limit, before.remaining, before.frees_at) == (
        reserved.value.limit,
        reserved.value.remaining,
        reserved.value.frees_at,
    )
    assert before.frees_at == first.created_at + WINDOW


async def test_the_store_reads_a_ban_and_overrides_from_the_database(
    store, make_limits, make_request
) -> None:
    user = await store.users.upsert("telegram", "1", "Ann")
    await store.users.set_banned(user, True)
    assert isinstance(await store.quotas.refusal(user, make_limits()), UserBannedError)  # stale
    user = await store.users.set_banned(user, False)
    await store.users.grant(user, max_song_minutes=1)
    assert await store.quotas.refusal(user, make_limits()) is None
    too_long = await store.quotas.refusal(user, make_limits(), seconds=61)
    assert isinstance(too_long, SongTooLongError) and too_long.max_seconds == 60
