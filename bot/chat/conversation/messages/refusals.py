"""Every sentence the bot says, in one place.

Errors from ``separation`` and ``storage`` are typed; this module turns each into one
friendly sentence. Internal errors get a short reference id that is also logged, so a
user's screenshot leads an operator straight to the log line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from bot.chat.conversation.user_text import escaped, excerpt
from separation.errors import (
    AudioInputError,
    AudioTooLargeError,
    AudioTooLongError,
    InvalidRenderOptionError,
    OutputTooLargeError,
    PoolError,
    UserJobLimitError,
)
from storage.errors import (
    QuotaExceededError,
    QuotaRefusedError,
    SongTooLongError,
    StorageError,
    TooManyConcurrentJobsError,
    UploadTooLargeError,
    UserBannedError,
)
from storage.records import QuotaStatus, Stats

DOWNLOADING = "Downloading your song..."
DONE = "Done! Instrumental first, then the vocals."
CANCELLED = "Cancelled. That song did not count against your quota."
# Karaoke controls: the buttons under an instrumental, and what a press can get back.
CONTROL_KEY_DOWN = "Key \N{MINUS SIGN}1"
CONTROL_KEY_UP = "Key +1"
CONTROL_SLOWER = "Slower"
CONTROL_FASTER = "Faster"
CONTROL_GUIDE_ON = "Guide vocal on"
CONTROL_GUIDE_OFF = "Guide vocal off"
CONTROL_UNKNOWN = "I can't find that song any more. Send it again to get new buttons."
CONTROL_BROKEN = "That button doesn't work. Send the song again to get new buttons."
CONTROL_NEEDS_REPLY = (
    "Reply to one of my instrumentals with /key -2, /tempo 0.9 or /guide -12 (or /guide off)."
)
CONTROL_RENDERING = "Changing it... this takes a few seconds."
CANCELLING = "Cancelling your song..."
RESUME_AFTER_RESTART = (
    "The bot is restarting; your song is saved and I'll send the result as soon as I'm back."
)
LOST_IN_RESTART = (
    "Sorry: the bot restarted and lost your song. It did not count against your quota; "
    "please send it again."
)
# Songs a restart interrupted before their job existed (bot.chat.conversation.intake).
LOST_BEFORE_SAVED = (
    "Sorry: the bot restarted while fetching your song and could not get it again, so it "
    "did not count against your quota; please send it again."
)
NOTHING_TO_CANCEL = "You have no song in progress."
BANNED = "Sorry, you can't use this bot."
SEND_A_SONG = "Send me a song (audio file, voice message or video) and I'll make it karaoke."
SEND_THE_SONG_NOW = "Send me the song now (audio, voice message or video)."
VOICE_MESSAGE = "Voice message"
"""The title of a song that has none of its own (a voice note without tags)."""
UNTITLED_SONG = "Song"
"""The title when nothing names the song (no platform title, no tags, no file name)."""
STOPPING = "The bot is restarting; please try again in a minute."
MOVED_TO_CHANNEL = "This is taking a while: I'll post the result in this channel and mention you."
NOT_ADMIN = "That command is for the bot's admins."
NOT_A_SONG = (
    "That file doesn't look like a song. Send an audio file, a voice message or a video with sound."
)
EDITS_IGNORED = (
    "Editing a message I already answered changes nothing: to change a song, send it again."
)
"""In /help: edited messages are ignored on purpose (issue 20), never a new job."""
ADMIN_USAGE = (
    "Usage: /grant PLATFORM:ID SONGS [MINUTES], /ban PLATFORM:ID, /unban PLATFORM:ID, /stats"
)

# The commands as /help and the platforms' command menus list them. (Discord's slash
# command picker takes its descriptions from ``bot.chat.discord.commands``, the command surface.)
TELEGRAM_COMMANDS: tuple[tuple[str, str], ...] = (
    ("karaoke", "Make a karaoke track (reply to a song, or send one next)"),
    ("stems", "Four stems instead of two"),
    ("quota", "What you have left today"),
    ("status", "The queue and your songs"),
    ("cancel", "Cancel your song in progress"),
    ("key", "Reply to an instrumental: another key, e.g. /key -2"),
    ("tempo", "Reply to an instrumental: another speed, e.g. /tempo 0.9"),
    ("guide", "Reply to an instrumental: a quiet guide vocal, /guide -12 or off"),
    ("help", "What this bot does"),
)
"""Telegram's command menu (``setMyCommands``) and its /help: (command, description)."""
TELEGRAM_FILE_LIMIT_NOTE = "Files up to 20 MB."
"""/help on Telegram's standard Bot API (a local Bot API server has no such limit)."""
DISCORD_HELP_COMMANDS: tuple[tuple[str, str], ...] = (
    (
        "/karaoke file:<song> [stems] [format] [key] [tempo] [guide]",
        "make a karaoke track (or post a song in a DM); the buttons under it change it",
    ),
    ("/quota", "what you have left today"),
    ("/status", "the queue and your songs"),
    ("/cancel", "cancel your song in progress"),
)


def discord_help_note(limit_bytes: int) -> str:
    """/help on Discord: how to send a song, and this channel's upload limit."""
    return (
        f"On Discord: /karaoke with a file (results up to {megabytes(limit_bytes)} per "
        "message here), or post a song in a DM, a song channel, or mentioning me."
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


# Re-renders (issue 20): the "Changing it..." message is edited into one of these.
def rerendered(change: str) -> str:
    """The last state of a re-render's message, just before its files: what changed."""
    return f"Here it is, {change}:" if change else "Here it is, as it was at first:"


def render_allowance_used(minutes_per_day: float, frees_up: datetime, now: datetime) -> str:
    """A press beyond the user's daily allowance of re-rendered audio."""
    return (
        f"That's all the changing I can do for you today ({count(minutes_per_day, 'minute')} "
        f"of audio a day). More frees up {relative_time(frees_up, now)}."
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


RESTARTED_ON_ANOTHER_WORKER = "restarted on another worker"
"""Added to the progress of a song whose first worker died: why its percentage began again."""


def running(fraction: float, *, restarted: bool = False) -> str:
    text = f"Separating... {math.floor(fraction * 100)}%"
    return f"{text} ({RESTARTED_ON_ANOTHER_WORKER})" if restarted else text


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


def result_title(title: str, part: str, change: str = "") -> str:
    """The name of one result, e.g. "My Song (Instrumental)" or, re-rendered,
    "My Song (Instrumental, −2 keys, 90%)" (files add their extension)."""
    detail = f", {change}" if change else ""
    return f"{title} ({part.capitalize()}{detail})"


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


_MAX_REASON_CHARS = 160
"""An admin command's refusal quotes what was typed: cut to this much."""


def admin_bad_arguments(reason: object) -> str:
    """An admin command's arguments did not parse: the reason (which quotes them, so it
    is cut short), then how to use it."""
    return f"{excerpt(reason, max_chars=_MAX_REASON_CHARS)}. {ADMIN_USAGE}"


def admin_refused(error: StorageError) -> str:
    """An admin command the store refused (an unknown user, say): the store's sentence,
    cut short (it quotes what the admin typed)."""
    return excerpt(error, max_chars=_MAX_REASON_CHARS)


def render_option_refused(error: InvalidRenderOptionError) -> str:
    """``/key 9`` and the like: out of range or not a number. The value is quoted as an
    excerpt: ``/key`` with 4,090 digits was echoed whole, over Telegram's message limit,
    and the user saw nothing (issue 20)."""
    return f"The {error.option} can't be {excerpt(error.value)}: it must be {error.allowed}."


def results_kept(retention_hours: float) -> str:
    """How long results stay on the server: the result cache's age limit, which it may
    undercut when it runs out of space (``pool.cache_max_age_hours``, ``cache_max_bytes``)."""
    return (
        f"The results stay on my server for up to {count(float(retention_hours), 'hour')} "
        "(so the same song comes back at once), then they are deleted."
    )


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
        f"{EDITS_IGNORED}\n\n"
        "Privacy: your upload is deleted as soon as it is processed. "
        f"{results_kept(retention_hours)} Separation by Demucs (Meta AI)."
    )


def describe_stats(stats: Stats) -> str:
    """A few lines of statistics (for admins, CLI or chat)."""
    by_status = ", ".join(f"{status} {jobs}" for status, jobs in stats.jobs_by_status.items())
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
        # Escaped: a display name with newlines or terminal escapes could forge lines.
        name = f" ({escaped(user.display_name)})" if user.display_name else ""
        lines.append(
            f"  {rank}. {user.platform}:{escaped(user.platform_user_id)}{name}: "
            f"{count(user.jobs_done, 'song')}, {user.audio_minutes:.1f} min"
        )
    return "\n".join(lines)
