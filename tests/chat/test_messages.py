"""What the bot says, as the user reads it: times that cannot be misread, proper plurals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.chat import messages
from bot.cli.messages import input_failed
from separation.errors import AudioTooLargeError, OutputTooLargeError, UserJobLimitError
from storage.errors import (
    QuotaExceededError,
    SongTooLongError,
    TooManyConcurrentJobsError,
    UploadTooLargeError,
)
from storage.records import QuotaLimits, QuotaStatus


def utc(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    "now, moment, expected",
    [
        (utc(2, 20, 26), utc(2, 23, 38), "in 3 h 12 min (23:38 UTC)"),
        # The case of issue 11: at 23:39 the next charge expires tomorrow at 23:38.
        (utc(2, 23, 39), utc(3, 23, 38), "in 23 h 59 min (tomorrow, 23:38 UTC)"),
        (utc(2, 23, 50), utc(3, 0, 5), "in 15 min (tomorrow, 00:05 UTC)"),
        (utc(2, 23, 59, 30), utc(3, 0, 0), "in less than a minute (tomorrow, 00:00 UTC)"),
        (utc(2, 12, 0), utc(2, 14, 0), "in 2 h (14:00 UTC)"),
        (utc(2, 12, 0, 1), utc(2, 14, 0), "in 2 h (14:00 UTC)"),  # rounded up, never down
        (utc(2, 12, 0), utc(4, 9, 30), "in 45 h 30 min (Fri 4 Dec, 09:30 UTC)"),
        (utc(2, 12, 0), utc(2, 11, 59), "now"),
    ],
)
def test_relative_time_names_the_day_when_it_is_not_today(now, moment, expected):
    assert messages.relative_time(moment, now) == expected


def _status(**changes) -> QuotaStatus:
    values = dict(
        limits=QuotaLimits(
            songs_per_day=5, audio_minutes_per_day=30, max_song_minutes=10, max_concurrent_jobs=2
        ),
        songs_used=5,
        audio_minutes_used=29,
        songs_left=0,
        audio_minutes_left=1.0,
        active_jobs=0,
        frees_at=utc(3, 23, 38),
        is_admin=False,
        is_banned=False,
    )
    values.update(changes)
    return QuotaStatus(**values)


def test_quota_summary_across_midnight():
    text = messages.quota_summary(_status(), now=utc(2, 23, 39))
    assert text == (
        "You have 0 songs and 1 minute of audio left today. Your oldest song stops counting "
        "in 23 h 59 min (tomorrow, 23:38 UTC). Songs can be up to 10 minutes long."
    )
    later = messages.quota_summary(_status(songs_left=1, frees_at=utc(3, 0, 10)), now=utc(3, 0, 1))
    assert later == (
        "You have 1 song and 1 minute of audio left today. Your oldest song stops counting "
        "in 9 min (00:10 UTC). Songs can be up to 10 minutes long."
    )


def test_songs_refusal_says_when_relative_to_now():
    error = QuotaExceededError(limit="songs_per_day", remaining=0, frees_at=utc(3, 23, 38))
    assert messages.quota_refused(error, now=utc(2, 23, 39)) == (
        "You've used today's songs. The next one frees up in 23 h 59 min (tomorrow, 23:38 UTC)."
    )


def test_minutes_refusal():
    error = QuotaExceededError(limit="audio_minutes_per_day", remaining=1.5, frees_at=utc(2, 22, 0))
    assert messages.quota_refused(error, now=utc(2, 21, 0)) == (
        "That song needs more audio time than you have left today (1.5 minutes). "
        "Enough frees up in 1 h (22:00 UTC)."
    )


@pytest.mark.parametrize(
    "error, expected",
    [
        (
            TooManyConcurrentJobsError(active=1, limit=1),
            "You already have 1 song in progress (the limit is 1); wait for it to finish.",
        ),
        (
            TooManyConcurrentJobsError(active=2, limit=2),
            "You already have 2 songs in progress (the limit is 2); wait for one to finish.",
        ),
        (
            SongTooLongError(duration_seconds=90, max_seconds=60),
            "That song is 1.5 minutes long; your limit is 1 minute per song.",
        ),
    ],
)
def test_refusals_use_singular_and_plural(error, expected):
    assert messages.quota_refused(error) == expected
    assert "(s)" not in expected


def test_the_pools_own_limit_is_worded_here_too():
    assert messages.for_error(UserJobLimitError(limit=1)) == (
        "You already have 1 song in progress; wait for it to finish."
    )


def test_rate_limit_notice():
    assert messages.rate_limited(2.2) == "Slow down a little: try again in 3 s."


def test_no_sentence_says_s_in_parentheses():
    texts = [value for value in vars(messages).values() if isinstance(value, str)]
    assert not [text for text in texts if "(s)" in text]
    assert messages.count(1, "song") == "1 song"
    assert messages.count(0, "song") == "0 songs"
    assert messages.count(1.0, "minute") == "1 minute"
    assert messages.count(timedelta(minutes=2).seconds / 60, "minute") == "2 minutes"


@pytest.mark.parametrize(
    "size_bytes, expected",
    [
        (2_500_000, "2.5 MB"),
        (9_940_000, "9.9 MB"),
        (9_960_000, "10 MB"),  # rounds to 10: whole megabytes from there
        (20_000_000, "20 MB"),
        (25 * 2**20, "26 MB"),  # decimal megabytes, as the platforms state their limits
        (200_000_000, "200 MB"),
        (30_000, "less than 0.1 MB"),
    ],
)
def test_sizes_read_one_way(size_bytes, expected):
    assert messages.megabytes(size_bytes) == expected


def test_every_size_in_a_sentence_uses_the_one_format():
    too_big = AudioTooLargeError(size_bytes=30_000_000, limit_bytes=20_000_000)
    assert messages.for_error(too_big) == "That file is 30 MB; the limit is 20 MB."
    assert input_failed(Path("song.wav"), too_big) == (
        "song.wav: too big: 30 MB; the limit is 20 MB (audio.max_input_bytes)"
    )
    assert messages.for_error(UploadTooLargeError(max_bytes=20_000_000)) == (
        "That file is too big for me to download here; the limit is 20 MB. "
        "Try a compressed MP3 or a shorter clip."
    )
    output = OutputTooLargeError(duration_seconds=600, budget_bytes=8_000_000, min_bitrate=96)
    assert "(8.0 MB per file)" in messages.for_error(output)


def test_help_says_how_long_results_are_kept_at_most():
    text = messages.help_text(max_minutes=15, retention_hours=6, commands=[("/help", "this")])
    assert (
        "The results stay on my server for up to 6 hours (so the same song comes back at "
        "once), then they are deleted."
    ) in text
    assert "up to 1 hour " in messages.results_kept(1.0)
