"""What the bot says, as the user reads it: times that cannot be misread, proper plurals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.chat.conversation import messages
from bot.chat.conversation.credits import display_title, song_credits
from bot.chat.conversation.user_text import MAX_NAME_CHARS, clean_name, escaped, excerpt
from bot.cli.messages import input_failed
from separation.errors import (
    AudioTooLargeError,
    AudioTooLongError,
    InvalidRenderOptionError,
    OutputTooLargeError,
    UserJobLimitError,
)
from storage.errors import (
    QuotaExceededError,
    SongTooLongError,
    TooManyConcurrentJobsError,
    UploadTooLargeError,
)
from storage.records import QuotaLimits, QuotaStatus, Stats, TopUser


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


# Issue 20: what users wrote, sent back safely.

NAME_CASES = [
    ("\u202e3pm (Instrumental).mp3", "3pm (Instrumental).mp3"),  # right-to-left override
    ("My\u200b Song\u200d\ufeff\u2060", "My Song"),  # zero-width characters
    ("\u2066Isolate\u2069 \u200eLTR\u200f \u202aembed\u202c", "Isolate LTR embed"),
    ("Ann\n" + "x" * 5002, "Ann " + "x" * (MAX_NAME_CHARS - 4)),  # a performer that went out
    ("tab\tand\r\nlines\x1b[31m red\x00", "tab and lines [31m red"),
    ("\u2028para\u2029graph\u00a0space", "para graph space"),
    ("日本語の歌 🎤🎶 مرحبا שלום Ελληνικά", "日本語の歌 🎤🎶 مرحبا שלום Ελληνικά"),  # kept
]


@pytest.mark.parametrize("raw, clean", NAME_CASES)
def test_names_lose_invisible_and_control_characters_and_are_capped(raw, clean):
    assert clean_name(raw) == clean


def test_titles_and_performers_are_cleaned_for_file_names_and_captions():
    title, performer = song_credits(
        {"title": "\u202eevil\u200b title", "artist": "Ann\n" + "y" * 5002}, file_name="x.mp3"
    )
    assert title == "evil title"
    assert performer == "Ann " + "y" * (MAX_NAME_CHARS - 4)
    assert messages.result_title(title, "instrumental") == "evil title (Instrumental)"
    assert display_title("\u202e\u200b") == messages.UNTITLED_SONG  # nothing visible left


def test_user_input_is_quoted_as_a_short_cleaned_excerpt():
    """``/key`` with 4,090 characters was echoed whole: over Telegram's 4,096, the user
    saw nothing and the log showed an ERROR."""
    refusal = messages.render_option_refused(
        InvalidRenderOptionError(option="key", value="9" * 4090, allowed="from -6 to 6")
    )
    assert (
        refusal == f"The key can't be {'9' * 23}\N{HORIZONTAL ELLIPSIS}: it must be from -6 to 6."
    )
    assert excerpt("a\nb\u202ec") == "a bc"
    assert len(messages.admin_bad_arguments(ValueError("x" * 5000))) < 300
    assert "\n" not in messages.admin_bad_arguments(ValueError("bad\nline"))


def test_names_for_operators_are_escaped_not_printed_raw():
    name = "Eve\x1b[2J\u202eevil\nroot: ok\\"
    assert escaped(name) == "Eve\\x1b[2J\\u202eevil\\nroot: ok\\\\"
    assert escaped("日本語 🎤 مرحبا") == "日本語 🎤 مرحبا"
    stats = Stats(
        users=1,
        jobs_by_status={"done": 1},
        audio_hours_processed=0.1,
        cache_hits=0,
        cache_hit_rate=0.0,
        top_users=[TopUser("telegram", "1", name, 1, 1.0)],
    )
    text = messages.describe_stats(stats)
    assert "\x1b" not in text and "\u202e" not in text and len(text.splitlines()) == 6
    assert "(Eve\\x1b[2J\\u202eevil\\nroot: ok\\\\)" in text


@pytest.mark.parametrize(
    "song, limit, expected",
    [
        (30.5, 30, ("0:30.5", "0:30")),  # read "0:30 long; the limit is 0:30"
        (30.04, 30, ("0:30.1", "0:30")),  # rounded up, never down to the limit
        (30.3, 30.25, ("0:30.3", "0:30.2")),  # the limit rounded down
        (245.3, 240, ("4:05", "4:00")),  # whole seconds when they tell them apart
        (3725, 3600, ("1:02:05", "1:00:00")),
    ],
)
def test_a_refused_length_is_shown_apart_from_its_limit(song, limit, expected):
    assert messages.song_and_limit(song, limit) == expected


def test_too_long_refusals_never_read_as_equal():
    error = AudioTooLongError(duration_seconds=30.5, limit_seconds=30)
    assert messages.input_refused(error) == (
        "That song is 0:30.5 long; the limit is 0:30. Please send a shorter one."
    )
    quota = SongTooLongError(duration_seconds=60.2, max_seconds=60)
    assert messages.quota_refused(quota) == "That song is 1:00.2 long; your limit is 1:00 per song."
