"""Every sentence the bot says, in one place.

Errors from ``separation`` and ``storage`` are typed; this module turns each into one
friendly sentence. Internal errors get a short reference id that is also logged, so a
user's screenshot leads an operator straight to the log line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from separation.errors import AudioInputError, OutputTooLargeError, PoolError
from storage.errors import (
    QuotaExceededError,
    QuotaRefusedError,
    SongTooLongError,
    TooManyConcurrentJobsError,
    UploadTooLargeError,
    UserBannedError,
)
from storage.records import QuotaStatus

DOWNLOADING = "Downloading your song..."
CHECKING = "Checking the file..."
UPLOADING = "Uploading..."
DONE = "Done! Instrumental first, then the vocals."
CANCELLED = "Cancelled. That song did not count against your quota."
RESUME_AFTER_RESTART = (
    "The bot is restarting; your song is saved and I'll send the result as soon as I'm back."
)
NOTHING_TO_CANCEL = "You have no song in progress."
BANNED = "Sorry, you can't use this bot."
SEND_A_SONG = "Send me a song (audio file, voice message or video) and I'll make it karaoke."
RATE_LIMITED = "Slow down a little, please: try again in {seconds} s."
NOT_ADMIN = "That command is for the bot's admins."
NOT_A_SONG = (
    "That file doesn't look like a song. Send an audio file, a voice message or a video with sound."
)
ADMIN_USAGE = (
    "Usage: /grant PLATFORM:ID SONGS [MINUTES], /ban PLATFORM:ID, /unban PLATFORM:ID, /stats"
)


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


def _clock(moment: datetime) -> str:
    return f"{moment:%H:%M} UTC"


def quota_refused(error: QuotaRefusedError) -> str:
    if isinstance(error, UserBannedError):
        return BANNED
    if isinstance(error, SongTooLongError):
        return (
            f"That song is {error.duration_seconds / 60:.1f} minutes long; your limit is "
            f"{error.max_seconds / 60:g} minutes per song."
        )
    if isinstance(error, TooManyConcurrentJobsError):
        return (
            f"You already have {error.active} song(s) in progress (the limit is "
            f"{error.limit}); wait for one to finish."
        )
    if isinstance(error, QuotaExceededError):
        what = "songs" if error.limit == "songs_per_day" else "minutes of audio"
        when = f" The next frees up at {_clock(error.frees_at)}." if error.frees_at else ""
        return f"You've used today's {what}.{when}"
    return str(error)


def for_error(error: BaseException) -> str | None:
    """The user sentence for a known error; None for unexpected (internal) ones."""
    if isinstance(error, AudioInputError | PoolError):
        return error.user_message
    if isinstance(error, OutputTooLargeError):
        return output_too_large(error)
    if isinstance(error, QuotaRefusedError):
        return quota_refused(error)
    if isinstance(error, UploadTooLargeError):
        return too_big_to_download(None, error.max_bytes)
    return None


def quota_summary(status: QuotaStatus) -> str:
    if status.is_banned:
        return BANNED
    if status.is_admin:
        return "You're an admin: no limits."
    parts = []
    if status.songs_left is not None:
        parts.append(f"{status.songs_left} song{'s' if status.songs_left != 1 else ''}")
    if status.audio_minutes_left is not None:
        parts.append(f"{status.audio_minutes_left:.0f} minutes of audio")
    left = " and ".join(parts) if parts else "no limit"
    text = f"You have {left} left today."
    if status.frees_at is not None:
        text += f" The next frees up at {_clock(status.frees_at)}."
    if status.limits.max_song_minutes is not None:
        text += f" Songs can be up to {status.limits.max_song_minutes:g} minutes long."
    return text


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
