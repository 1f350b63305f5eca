"""What the commands answer: /help (and the command menus), /quota and /status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.chat.conversation.messages.numbers import (
    count,
    megabytes,
    relative_time,
)
from bot.chat.conversation.messages.refusals import BANNED
from storage.records import QuotaStatus

NOTHING_TO_CANCEL = "You have no song in progress."
SEND_A_SONG = "Send me a song (audio file, voice message or video) and I'll make it karaoke."
SEND_THE_SONG_NOW = "Send me the song now (audio, voice message or video)."
EDITS_IGNORED = (
    "Editing a message I already answered changes nothing: to change a song, send it again."
)
"""In /help: edited messages are ignored on purpose (issue 20), never a new job."""


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
    ("video", "A karaoke video with the words (reply to a song, or your latest)"),
    ("help", "What this bot does"),
)
"""Telegram's command menu (``setMyCommands``) and its /help: (command, description)."""
TELEGRAM_FILE_LIMIT_NOTE = "Files up to 20 MB."
"""/help on Telegram's standard Bot API (a local Bot API server has no such limit)."""
DISCORD_HELP_COMMANDS: tuple[tuple[str, str], ...] = (
    (
        "/karaoke file:<song> [stems] [format] [key] [tempo] [guide] [lyrics]",
        "make a karaoke track (or post a song in a DM); the buttons under it change it",
    ),
    (
        "/video [lyrics] [text]",
        "a karaoke video of your latest song (or reply to a result with the lyrics)",
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
    links: bool = False,
) -> str:
    """What the bot does, its limits, the platform's commands and the privacy promise
    (``links``: songs are taken as links too, and kept a while by their source)."""
    command_lines = "\n".join(f"{command} - {description}" for command, description in commands)
    kinds = "a voice message, a video or a link" if links else "a voice message or a video"
    kept = " (a song from a link is kept up to an hour: the same link again is quick)"
    return (
        f"I turn any song into a karaoke track: send me an audio file, {kinds}, and I'll "
        "send back the instrumental and the vocals.\n\n"
        f"Songs can be up to {max_minutes:g} minutes long. {platform_note}\n"
        f"{command_lines}\n\n"
        f"{EDITS_IGNORED}\n\n"
        f"Privacy: your upload is deleted as soon as it is processed{kept if links else ''}. "
        f"{results_kept(retention_hours)} Separation by Demucs (Meta AI)."
    )
