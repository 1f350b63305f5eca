"""What the chat flow needs from a chat platform, and nothing more.

Adapters (Telegram, Discord) translate their library's objects into these types and
implement :class:`Replier` for one conversation. The flow in ``bot.chat.flow`` is written
once against them, so no chat logic exists twice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from storage.records import Platform

logger = logging.getLogger(__name__)

T = TypeVar("T")

START_RETRY_SECONDS = 300.0
"""How long an adapter keeps trying to reach its platform at start-up before giving up.

A bot that systemd (or Docker) starts before the network is up, or while the platform
has an outage, comes up by itself when it can connect; after this long it gives up with
one line and exit code 2, so a supervisor notices. A rejected token is never retried.
"""
START_RETRY_FIRST_DELAY = 1.0
START_RETRY_MAX_DELAY = 30.0
"""Delays double from the first to this cap: 1, 2, 4, 8, 16, 30, 30... seconds."""


class StartError(RuntimeError):
    """The bot cannot start; the message is one line for the operator.

    Every adapter raises this (or a subclass) for a missing or rejected token and for a
    platform it could not reach in time; ``karaoke-bot run`` prints it and exits 2.
    """


async def connect_with_retries(
    connect: Callable[[], Awaitable[T]],
    *,
    platform: str,
    is_transient: Callable[[BaseException], bool],
    budget_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``connect`` until it succeeds, retrying transient (network) errors with capped
    exponential backoff for at most ``budget_seconds`` (default :data:`START_RETRY_SECONDS`).

    Raises:
        StartError: ``connect`` raised it (say, a rejected token), or the platform was
            still unreachable when the budget ran out.
        Exception: whatever ``connect`` raised that is not transient.
    """
    budget = START_RETRY_SECONDS if budget_seconds is None else budget_seconds
    deadline = clock() + budget
    delay = START_RETRY_FIRST_DELAY
    while True:
        try:
            return await connect()
        except StartError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            left = deadline - clock()
            reason = str(exc) or type(exc).__name__
            if left <= 0:
                raise StartError(
                    f"cannot reach {platform} (still failing after {budget:g} s of retries): "
                    f"{reason}"
                ) from exc
            wait = min(delay, left, START_RETRY_MAX_DELAY)
            logger.warning("%s: cannot connect (%s); retrying in %.0f s", platform, reason, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, START_RETRY_MAX_DELAY)


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
