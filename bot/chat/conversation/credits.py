"""How results are named: a title and an artist safe for file names and captions.

Both pass :func:`bot.chat.conversation.user_text.clean_name` (no bidi overrides, zero-width or
control
characters, a length cap); a title also loses path characters, since it names files.

Used by the flow when a song arrives (``bot.chat.conversation.flow``) and by the builder
of every delivery's files, the first one and each re-render's
(``bot.chat.conversation.delivery``), so all of them name the same song the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.chat.conversation import messages
from bot.chat.conversation.user_text import clean_name

_UNSAFE_FILENAME = re.compile(r'[/\\:*?"<>|]+')
"""Path and wildcard characters: a title becomes a file name."""


def _cleaned(candidate: str | None) -> str:
    return clean_name(_UNSAFE_FILENAME.sub(" ", candidate or "")).strip(". ")


def display_title(*candidates: str | None) -> str:
    """A title safe to use in a file name and a caption: one line, no path characters."""
    for candidate in candidates:
        if cleaned := _cleaned(candidate):
            return cleaned
    return messages.UNTITLED_SONG


def file_stem(file_name: str | None) -> str | None:
    """A user's file name without its extension (for titles only)."""
    if not file_name:
        return None
    return file_name.rsplit(".", 1)[0] if "." in file_name else file_name


def song_credits(
    tags: Mapping[str, str],
    *,
    file_name: str | None = None,
    title_hint: str | None = None,
    performer_hint: str | None = None,
    fallback_title: str | None = None,
) -> tuple[str, str | None]:
    """The results' title and artist, named consistently.

    The platform's own metadata first (a Telegram audio's title and performer), then the
    file's tags, then its name. A song with none of these (a voice note) gets the
    generic ``fallback_title`` and is credited to nobody: "Voice message" by an artist
    found in the tags was a title and an artist that did not belong together.
    """
    performer = clean_name(performer_hint or tags.get("artist")) or None
    for candidate in (title_hint, tags.get("title"), file_stem(file_name)):
        if _cleaned(candidate):
            return display_title(candidate), performer
    if fallback_title:
        return display_title(fallback_title), None
    return display_title(None), performer
