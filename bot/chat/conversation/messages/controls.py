"""Karaoke controls: the buttons under an instrumental, and what a press gets back."""

from __future__ import annotations

from datetime import datetime

from bot.chat.conversation.messages.numbers import (
    count,
    relative_time,
)
from bot.chat.conversation.user_text import excerpt
from separation.errors import (
    InvalidRenderOptionError,
)

CONTROL_KEY_DOWN = "Key \N{MINUS SIGN}1"
CONTROL_KEY_UP = "Key +1"
CONTROL_SLOWER = "Slower"
CONTROL_FASTER = "Faster"
CONTROL_GUIDE_ON = "Guide vocal on"
CONTROL_GUIDE_OFF = "Guide vocal off"
CONTROL_VIDEO = "\N{CLAPPER BOARD} Lyrics video"
CONTROL_UNKNOWN = "I can't find that song any more. Send it again to get new buttons."
CONTROL_BROKEN = "That button doesn't work. Send the song again to get new buttons."
CONTROL_NEEDS_REPLY = (
    "Reply to one of my instrumentals with /key -2, /tempo 0.9 or /guide -12 (or /guide off)."
)
CONTROL_RENDERING = "Changing it... this takes a few seconds."


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


def render_option_refused(error: InvalidRenderOptionError) -> str:
    """``/key 9`` and the like: out of range or not a number. The value is quoted as an
    excerpt: ``/key`` with 4,090 digits was echoed whole, over Telegram's message limit,
    and the user saw nothing (issue 20)."""
    return f"The {error.option} can't be {excerpt(error.value)}: it must be {error.allowed}."
