"""What the chat flow needs from a chat platform, and nothing more.

Adapters (Telegram, Discord) translate their library's objects into these types and
implement :class:`Replier` for one conversation. The flow in ``bot.flow`` is written
once against them, so no chat logic exists twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from storage.records import Platform


@dataclass(frozen=True)
class ChatUser:
    platform: Platform
    user_id: str
    display_name: str = ""
    is_admin: bool = False
    """Set by the adapter from the configured admin ids/roles."""

    @property
    def key(self) -> str:
        """``platform:id``: how users appear in logs and the pool (never names)."""
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
    performer_hint: str | None = None


@dataclass(frozen=True)
class OutgoingFile:
    path: Path
    filename: str
    title: str
    performer: str | None = None
    duration_seconds: float | None = None


@dataclass
class UploadPlan:
    """How results must be sent on this platform: sizes and grouping."""

    max_file_bytes: int
    """Largest file the bot may upload here."""
    max_download_bytes: int
    """Largest file the bot may download here (Telegram's Bot API: 20 MB)."""
    max_message_bytes: int | None = None
    """Total of one message (Discord); None when each file goes in its own message."""
    extra: dict[str, Any] = field(default_factory=dict)


class Replier(Protocol):
    """Talks to one conversation on behalf of the flow."""

    @property
    def upload_plan(self) -> UploadPlan: ...

    async def send_text(self, text: str) -> Any:
        """Send a message; returns a handle that ``edit_text`` accepts."""
        ...

    async def edit_text(self, handle: Any, text: str) -> None: ...

    async def send_files(self, files: list[OutgoingFile]) -> None:
        """Send the files in order, in as few messages as the upload plan allows."""
        ...
