"""Refusals and errors: each typed error from ``separation`` and ``storage`` as one
friendly sentence. Internal errors get a short reference id that is also logged, so a
user's screenshot leads an operator straight to the log line.
"""

from __future__ import annotations

import math
from datetime import datetime

from bot.chat.conversation.messages.numbers import (
    count,
    megabytes,
    relative_time,
    song_and_limit,
)
from separation.errors import (
    AudioInputError,
    AudioTooLargeError,
    AudioTooLongError,
    OutputTooLargeError,
    PoolError,
    UserJobLimitError,
)
from storage.errors import (
    QuotaExceededError,
    QuotaRefusedError,
    SongTooLongError,
    TooManyConcurrentJobsError,
    UploadTooLargeError,
    UserBannedError,
)

BANNED = "Sorry, you can't use this bot."
NOT_A_SONG = (
    "That file doesn't look like a song. Send an audio file, a voice message or a video with sound."
)


def rate_limited(retry_after_seconds: float) -> str:
    """The one notice a user over the request rate gets."""
    return f"Slow down a little: try again in {max(1, math.ceil(retry_after_seconds))} s."


def file_too_large(size_bytes: int, limit_bytes: int) -> str:
    """A file over ``audio.max_input_bytes`` (found when its header is read)."""
    return f"That file is {megabytes(size_bytes)}; the limit is {megabytes(limit_bytes)}."


def input_refused(error: AudioInputError) -> str:
    """Why an upload cannot be separated (a file that is not a song we accept)."""
    if isinstance(error, AudioTooLargeError):
        return file_too_large(error.size_bytes, error.limit_bytes)
    if isinstance(error, AudioTooLongError) and error.duration_seconds is not None:
        song, limit = song_and_limit(error.duration_seconds, error.limit_seconds)
        return f"That song is {song} long; the limit is {limit}. Please send a shorter one."
    return error.user_message


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
        song = count(error.duration_seconds / 60, "minute")
        limit = count(error.max_seconds / 60, "minute")
        if song.split()[0] == limit.split()[0]:  # "1 minute" over "1 minute": be precise
            song, limit = song_and_limit(error.duration_seconds, error.max_seconds)
        return f"That song is {song} long; your limit is {limit} per song."
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
    if isinstance(error, AudioInputError):
        return input_refused(error)
    if isinstance(error, PoolError):
        return error.user_message
    if isinstance(error, OutputTooLargeError):
        return output_too_large(error)
    if isinstance(error, QuotaRefusedError):
        return quota_refused(error, now=now)
    if isinstance(error, UploadTooLargeError):
        return too_big_to_download(None, error.max_bytes)
    return None
