"""A song on its way: the progress message's states, restarts, and the results' names."""

from __future__ import annotations

import math

from bot.chat.conversation.messages.numbers import (
    format_wait,
)

DOWNLOADING = "Downloading your song..."
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
# Songs a restart interrupted before their job existed (bot.chat.conversation.intake).
LOST_BEFORE_SAVED = (
    "Sorry: the bot restarted while fetching your song and could not get it again, so it "
    "did not count against your quota; please send it again."
)
VOICE_MESSAGE = "Voice message"
"""The title of a song that has none of its own (a voice note without tags)."""
UNTITLED_SONG = "Song"
"""The title when nothing names the song (no platform title, no tags, no file name)."""
STOPPING = "The bot is restarting; please try again in a minute."
MOVED_TO_CHANNEL = "This is taking a while: I'll post the result in this channel and mention you."


def queued(position: int, eta_seconds: float | None) -> str:
    return f"Queued (position {position}, about {format_wait(eta_seconds)})"


RESTARTED_ON_ANOTHER_WORKER = "restarted on another worker"
"""Added to the progress of a song whose first worker died: why its percentage began again."""


def running(fraction: float, *, restarted: bool = False) -> str:
    text = f"Separating... {math.floor(fraction * 100)}%"
    return f"{text} ({RESTARTED_ON_ANOTHER_WORKER})" if restarted else text


def result_title(title: str, part: str, change: str = "") -> str:
    """The name of one result, e.g. "My Song (Instrumental)" or, re-rendered,
    "My Song (Instrumental, −2 keys, 90%)" (files add their extension)."""
    detail = f", {change}" if change else ""
    return f"{title} ({part.capitalize()}{detail})"
