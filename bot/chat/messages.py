"""Every sentence the bot says, in one place.

Errors from ``separation`` and ``storage`` are typed; this module turns each into one
friendly sentence. Internal errors get a short reference id that is also logged, so a
user's screenshot leads an operator straight to the log line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from separation.errors import AudioInputError, OutputTooLargeError, PoolError, UserJobLimitError
from storage.errors import (
    QuotaExceededError,
    QuotaRefusedError,
    SongTooLongError,
    TooManyConcurrentJobsError,
    UploadTooLargeError,
    UserBannedError,
)
from storage.records import QuotaStatus, Stats

DOWNLOADING = "Downloading your song..."
CHECKING = "Checking the file..."
DONE = "Done! Instrumental first, then the vocals."
CANCELLED = "Cancelled. That song did not count against your quota."
CANCELLING = "Cancelling your song..."
RESUME_AFTER_RESTART = (
    "The bot is restarting; your song is saved and I'll send the result as soon as I'm back."
)
LOST_IN_RESTART = (
    "Sorry: the bot restarted and lost your song. It did not count against your quota; "
    "please send it again."
)
NOTHING_TO_CANCEL = "You have no song in progress."
BANNED = "Sorry, you can't use this bot."
SEND_A_SONG = "Send me a song (audio file, voice message or video) and I'll make it karaoke."
SEND_THE_SONG_NOW = "Send me the song now (audio, voice message or video)."
VOICE_MESSAGE = "Voice message"
"""The title of a song that has none of its own (a voice note without tags)."""
STOPPING = "The bot is restarting; please try again in a minute."
MOVED_TO_CHANNEL = "This is taking a while: I'll post the result in this channel and mention you."
NOT_ADMIN = "That command is for the bot's admins."
NOT_A_SONG = (
    "That file doesn't look like a song. Send an audio file, a voice message or a video with sound."
)
ADMIN_USAGE = (
    "Usage: /grant PLATFORM:ID SONGS [MINUTES], /ban PLATFORM:ID, /unban PLATFORM:ID, /stats"
)


def count(amount: float, singular: str, plural: str | None = None) -> str:
    """``1 song``, ``2 songs``, ``0.25 minutes``: the number and the right form of the word."""
    number = str(amount)
    if isinstance(amount, float):
        number = f"{amount:.2f}".rstrip("0").removesuffix(".")
    return f"{number} {singular if number == '1' else plural or singular + 's'}"


def relative_time(moment: datetime, now: datetime | None = None) -> str:
    """When ``moment`` is, in a way that cannot be misread a minute later or a day off.

    The relative part comes first ("in 3 h 12 min"); the UTC clock time follows, with
    the day when it is not today: "in 3 h 12 min (tomorrow, 23:38 UTC)". A bare "23:38"
    was read as today even when it meant tomorrow (issue 11).
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    seconds = (moment - now).total_seconds()
    if seconds <= 0:
        return "now"
    if seconds < 60:
        relative = "in less than a minute"
    else:
        hours, minutes = divmod(math.ceil(seconds / 60), 60)
        parts = ([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if minutes else [])
        relative = "in " + " ".join(parts)
    days = (moment.date() - now.date()).days
    if days == 0:
        day = ""
    elif days == 1:
        day = "tomorrow, "
    else:
        day = f"{moment:%a %d %b}, ".replace(" 0", " ")
    return f"{relative} ({day}{moment:%H:%M} UTC)"


def rate_limited(retry_after_seconds: float) -> str:
    """The one notice a user over the request rate gets."""
    return f"Slow down a little: try again in {max(1, math.ceil(retry_after_seconds))} s."


def format_wait(seconds: float | None) -> str:
    if seconds is None:
        return "a moment"
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes / 60:.1f} h"


def queued(position: int, eta_seconds: float | None) -> str:
    return f"Queued (position {position}, about {format_wait(eta_seconds)})"


def running(fraction: float) -> str:
    return f"Separating... {math.floor(fraction * 100)}%"


def megabytes(size_bytes: float) -> str:
    """Sizes for users in decimal megabytes, as Telegram and Discord state their limits."""
    return f"{size_bytes / 1e6:.0f} MB" if size_bytes >= 10e6 else f"{size_bytes / 1e6:.1f} MB"


def too_big_to_download(size_bytes: int | None, limit_bytes: int) -> str:
    size = f" ({megabytes(size_bytes)})" if size_bytes else ""
    return (
        f"That file is too big for me to download here{size}; the limit is "
        f"{megabytes(limit_bytes)}. Try a compressed MP3 or a shorter clip."
    )


def output_too_large(error: OutputTooLargeError) -> str:
    return (
        f"Your song is too long for the results to fit this chat's upload limit "
        f"({megabytes(error.budget_bytes)} per file), even at the lowest quality I send. "
        "Try a shorter song, or MP3 instead of FLAC."
    )


def internal_error(reference: str) -> str:
    return (
        f"Something went wrong on my side (reference {reference}). Your quota was not "
        "charged; please try again later."
    )


def songs_in_progress(active: int, limit: int | None = None) -> str:
    """A refusal: the user already has as many songs in progress as allowed."""
    limit_note = f" (the limit is {limit})" if limit is not None else ""
    one = "it" if active == 1 else "one"
    return (
        f"You already have {count(active, 'song')} in progress{limit_note}; "
        f"wait for {one} to finish."
    )


def quota_refused(error: QuotaRefusedError, *, now: datetime | None = None) -> str:
    """A refusal by the quota; ``now`` is the clock the times are relative to."""
    if isinstance(error, UserBannedError):
        return BANNED
    if isinstance(error, SongTooLongError):
        return (
            f"That song is {count(error.duration_seconds / 60, 'minute')} long; your limit "
            f"is {count(error.max_seconds / 60, 'minute')} per song."
        )
    if isinstance(error, TooManyConcurrentJobsError):
        return songs_in_progress(error.active, error.limit)
    if isinstance(error, QuotaExceededError):
        if error.limit == "songs_per_day":
            text = "You've used today's songs."
            when = "The next one frees up"
        else:
            text = (
                f"That song needs more audio time than you have left today "
                f"({count(float(error.remaining), 'minute')})."
            )
            when = "Enough frees up"
        if error.frees_at is not None:
            text += f" {when} {relative_time(error.frees_at, now)}."
        return text
    return str(error)


def for_error(error: BaseException, *, now: datetime | None = None) -> str | None:
    """The user sentence for a known error; None for unexpected (internal) ones."""
    if isinstance(error, UserJobLimitError):
        return songs_in_progress(error.limit)
    if isinstance(error, AudioInputError | PoolError):
        return error.user_message
    if isinstance(error, OutputTooLargeError):
        return output_too_large(error)
    if isinstance(error, QuotaRefusedError):
        return quota_refused(error, now=now)
    if isinstance(error, UploadTooLargeError):
        return too_big_to_download(None, error.max_bytes)
    return None


def quota_summary(status: QuotaStatus, *, now: datetime | None = None) -> str:
    """/quota: what is left in the rolling 24 h window and when the oldest charge expires."""
    if status.is_banned:
        return BANNED
    if status.is_admin:
        return "You're an admin: no limits."
    parts = []
    if status.songs_left is not None:
        parts.append(count(status.songs_left, "song"))
    if status.audio_minutes_left is not None:
        parts.append(f"{count(float(round(status.audio_minutes_left)), 'minute')} of audio")
    if parts:
        text = f"You have {' and '.join(parts)} left today."
    else:
        text = "You have no daily limit."
    if status.frees_at is not None and parts:
        text += f" Your oldest song stops counting {relative_time(status.frees_at, now)}."
    if status.limits.max_song_minutes is not None:
        text += f" Songs can be up to {count(status.limits.max_song_minutes, 'minute')} long."
    return text


def status_summary(queue_length: int, songs: Sequence[tuple[str, str]], quota: str) -> str:
    """/status: the queue, the user's songs in progress (title, state) and their quota."""
    lines = [f"Songs waiting in the queue: {queue_length}."]
    if not songs:
        lines.append(NOTHING_TO_CANCEL)
    lines.extend(f"- {title}: {state}" for title, state in songs)
    lines.append(quota)
    return "\n".join(lines)


def admin_granted(ref: str, songs: int | None, minutes: float | None) -> str:
    return f"{ref}: songs/day {songs}, minutes/day {minutes}"


def admin_banned(ref: str, banned: bool) -> str:
    return f"{ref} is {'banned' if banned else 'no longer banned'}."


def help_text(
    *,
    max_minutes: float,
    retention_hours: float,
    commands: Sequence[tuple[str, str]],
    platform_note: str = "",
) -> str:
    """What the bot does, its limits, the platform's commands and the privacy promise."""
    command_lines = "\n".join(f"{command} - {description}" for command, description in commands)
    return (
        "I turn any song into a karaoke track: send me an audio file, a voice message or a "
        "video, and I'll send back the instrumental and the vocals.\n\n"
        f"Songs can be up to {max_minutes:g} minutes long. {platform_note}\n"
        f"{command_lines}\n\n"
        f"Privacy: your upload is deleted as soon as it is processed and the results after "
        f"{retention_hours:g} hours. Separation by Demucs (Meta AI)."
    )


def describe_stats(stats: Stats) -> str:
    """A few lines of statistics (for admins, CLI or chat)."""
    by_status = ", ".join(f"{status} {count}" for status, count in stats.jobs_by_status.items())
    done = stats.jobs_by_status.get("done", 0)
    if stats.cache_hit_rate is None:
        hits = "no finished jobs yet"
    else:
        hits = f"{stats.cache_hits} of {done} finished jobs ({stats.cache_hit_rate:.0%})"
    lines = [
        f"users            {stats.users}",
        f"jobs             {by_status}",
        f"audio processed  {stats.audio_hours_processed:.2f} h",
        f"cache hits       {hits}",
        "top users" if stats.top_users else "top users        none yet",
    ]
    for rank, user in enumerate(stats.top_users, start=1):
        name = f" ({user.display_name})" if user.display_name else ""
        lines.append(
            f"  {rank}. {user.platform}:{user.platform_user_id}{name}: "
            f"{songs(user.jobs_done)}, {user.audio_minutes:.1f} min"
        )
    return "\n".join(lines)


def songs(count: int) -> str:
    return f"{count} song" if count == 1 else f"{count} songs"
