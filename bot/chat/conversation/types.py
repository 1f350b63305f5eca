"""What the chat flow needs from a chat platform, and nothing more.

Adapters (Telegram, Discord) translate their library's objects into these types and
implement :class:`Replier` for one conversation. The flow in ``bot.chat.conversation.flow`` is
written
once against them, so no chat logic exists twice. What an adapter itself is (its
lifecycle, tasks and start errors) is ``bot.chat.conversation.adapter``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.chat.conversation.controls import Button
from storage.records import Platform


@dataclass(frozen=True)
class ChatUser:
    platform: Platform
    user_id: str
    display_name: str = ""
    is_admin: bool = False
    """Set by the adapter from the configured admin ids/roles."""

    @property
    def ref(self) -> str:
        """``platform:id``, spelt as ``storage``'s ``UserRecord.ref``: how users appear in
        logs and the pool (never names)."""
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True)
class Conversation:
    """Where a request came from, so results (and errors) can be delivered, even later."""

    platform: Platform
    chat_id: str
    guild_id: str | None = None
    channel_id: str | None = None
    message_id: str | None = None
    is_private: bool = True


ByteStream = Callable[[], AsyncIterator[bytes]]
"""Opens the upload's download as a stream of chunks (the store enforces the byte limit
while writing, so a lying declared size cannot fill the disk)."""


@dataclass(frozen=True)
class SongUpload:
    """A song a user sent, not downloaded yet."""

    stream: ByteStream
    file_name: str | None = None
    """The user's file name: for display only, never used to build a path."""
    declared_size: int | None = None
    title_hint: str | None = None
    """The platform's own title (a Telegram audio's), preferred to the file's tags."""
    performer_hint: str | None = None
    fallback_title: str | None = None
    """A title for a song with no title, tags or file name of its own ("Voice message")."""
    file_ref: str | None = None
    """What the platform needs to hand the file out again after a restart (a Telegram
    ``file_id``, a Discord attachment URL); None where it cannot."""
    file_unique_id: str | None = None
    link: str | None = None
    """The link the song was sent as (checked by ``bot.links.classify``): its bytes come
    from the link service (``bot.chat.conversation.link_source``), not ``stream``."""
    lyrics: LyricsUpload | None = None
    """Lyrics sent with the song (Discord's ``/karaoke lyrics:``), for its karaoke video:
    the flow keeps them with the song's job."""


@dataclass(frozen=True)
class OutgoingFile:
    path: Path
    filename: str
    title: str
    performer: str | None = None
    duration_seconds: float | None = None
    controls: list[list[Button]] | None = None
    """Karaoke-control buttons to show under this file (``bot.chat.conversation.controls``)."""
    is_video: bool = False
    """A karaoke video (MP4) rather than audio: sent as a video message (Telegram
    ``sendVideo``; a Discord attachment), with ``width``/``height`` for the player."""
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class LyricsUpload:
    """Lyrics a user sent (a reply to a result, or an attachment of ``/karaoke``): pasted
    text, or the bytes of an ``.lrc``/``.txt`` file the adapter downloaded (bounded by
    ``MAX_LYRICS_DOWNLOAD_BYTES``). Untrusted: cleaned by ``separation.lyrics.parse``."""

    content: str | bytes
    filename: str | None = None


MAX_LYRICS_DOWNLOAD_BYTES = 256_000
"""The largest lyrics file an adapter downloads (a whole album's LRC is under 50 KB)."""


@dataclass
class UploadPlan:
    """How results must be sent on this platform: sizes and grouping."""

    max_file_bytes: int
    """Largest file the bot may upload here."""
    max_download_bytes: int
    """Largest file the bot may download here (Telegram's Bot API: 20 MB)."""
    max_message_bytes: int | None = None
    """Total of one message (Discord); None when each file goes in its own message."""


class Replier(Protocol):
    """Talks to one conversation on behalf of the flow."""

    @property
    def upload_plan(self) -> UploadPlan: ...

    async def send_text(self, text: str) -> Any:
        """Send a message; returns a handle that ``edit_text`` accepts."""
        ...

    async def edit_text(self, handle: Any, text: str) -> None: ...

    def message_ref(self, handle: Any) -> str | None:
        """A storable id for a message ``send_text`` returned, so that the message can be
        edited again after a restart; None where that is not possible."""
        ...

    def message_handle(self, ref: str) -> Any | None:
        """The ``edit_text`` handle of a message sent before a restart (see
        :meth:`message_ref`); None where that is not possible."""
        ...

    async def send_files(self, files: list[OutgoingFile]) -> None:
        """Send the files in order, in as few messages as the upload plan allows."""
        ...


def error_reference() -> str:
    """A short id that ties a user's "something went wrong (ref abc123)" to the log line
    with the traceback, without showing the user anything internal."""
    return secrets.token_hex(3)
