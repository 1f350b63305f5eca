"""How numbers read in what the bot says: counts, sizes, waits, lengths, and times."""

from __future__ import annotations

import math
from datetime import UTC, datetime


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


def format_wait(seconds: float | None) -> str:
    if seconds is None:
        return "a moment"
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes / 60:.1f} h"


def megabytes(size_bytes: float) -> str:
    """A size as users read it, in the chats and on the command line alike.

    Decimal megabytes, as Telegram and Discord state their limits: one decimal below
    10 MB ("2.5 MB"), whole megabytes from 10 MB up ("20 MB", "200 MB"). A size that is
    not zero never reads as zero ("less than 0.1 MB").
    """
    size_mb = size_bytes / 1e6
    if 0 < size_mb < 0.05:
        return "less than 0.1 MB"
    rounded = f"{size_mb:.1f}"
    return f"{size_mb:.0f} MB" if float(rounded) >= 10 else f"{rounded} MB"


def song_and_limit(song_seconds: float, limit_seconds: float) -> tuple[str, str]:
    """A refused song's length and the limit it is over, as ``m:ss``, told apart.

    Whole seconds when they show the song is longer ("4:05" and "4:00"); otherwise the
    song's length rounded up and the limit down to tenths: a 30.5 s song read "0:30 long;
    the limit is 0:30" (issue 20), and now reads "0:30.5" against "0:30".
    """
    if round(song_seconds) > math.floor(limit_seconds):
        return _clock(round(song_seconds)), _clock(math.floor(limit_seconds))
    tenths_up = math.ceil(round(song_seconds * 10, 6)) / 10
    tenths_down = math.floor(round(limit_seconds * 10, 6)) / 10
    return _clock(tenths_up), _clock(tenths_down)


def _clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), with tenths only when there are any."""
    whole = math.floor(seconds)
    tenths = round((seconds - whole) * 10)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"{text}.{tenths}" if tenths else text
