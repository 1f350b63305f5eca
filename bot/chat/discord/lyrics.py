"""Lyrics a Discord user sends, and which of the bot's results they are for.

Lyrics come as a reply to one of the bot's messages (a result, or the question asking
for them), as an ``.lrc``/``.txt`` attachment or pasted text, or as options of
``/karaoke`` and ``/video``. A reply names its song by the control data of the buttons
under the message it replies to (``bot.chat.conversation.controls``), so nothing needs
remembering between the result and the reply, across restarts included.

Everything here is hostile input: a lyrics file is read only up to
``MAX_LYRICS_DOWNLOAD_BYTES`` (refused from its declared size first, then cut off while
streaming, since a declared size can lie), within a time limit; the replied-to message
is taken from the event (Discord sends it with the reply) or fetched once, bounded, and
must be the bot's own. The text itself is cleaned by ``separation.lyrics.parse``.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
from pathlib import PurePosixPath
from typing import Any

import aiohttp
import discord

from bot.chat.conversation import messages
from bot.chat.conversation.controls import PREFIX, BadControlError, ControlState
from bot.chat.conversation.types import MAX_LYRICS_DOWNLOAD_BYTES, LyricsUpload
from bot.chat.discord.attachments import download
from separation.errors import LyricsInputError

LYRICS_SUFFIXES = (".lrc", ".txt")
DOWNLOAD_SECONDS = 30.0
"""A lyrics file is a few kilobytes: one that takes longer is not worth waiting for."""
FETCH_SECONDS = 10.0
"""How long to wait for Discord to hand out a replied-to message it did not send along."""


class LyricsFileTooLargeError(LyricsInputError):
    """A lyrics attachment over ``MAX_LYRICS_DOWNLOAD_BYTES`` (declared or streamed)."""

    @property
    def user_message(self) -> str:
        return messages.lyrics_file_too_large(MAX_LYRICS_DOWNLOAD_BYTES)


class NotLyricsFileError(LyricsInputError):
    """An attachment offered as lyrics that is not an ``.lrc`` or ``.txt`` file."""

    @property
    def user_message(self) -> str:
        return messages.NOT_A_LYRICS_FILE


class LyricsDownloadError(LyricsInputError):
    """A lyrics attachment that could not be downloaded (gone, slow, refused)."""

    @property
    def user_message(self) -> str:
        return messages.LYRICS_FILE_UNREADABLE


def is_lyrics_attachment(attachment: discord.Attachment) -> bool:
    """An ``.lrc`` or ``.txt`` file (by name), or one Discord calls plain text."""
    suffix = PurePosixPath(attachment.filename.lower()).suffix
    content_type = attachment.content_type or mimetypes.guess_type(attachment.filename)[0] or ""
    return suffix in LYRICS_SUFFIXES or content_type.split(";")[0].strip() == "text/plain"


def lyrics_attachment(message: discord.Message) -> discord.Attachment | None:
    """The message's first lyrics attachment (the only one ever read)."""
    return next((a for a in message.attachments if is_lyrics_attachment(a)), None)


def check_lyrics_attachment(attachment: discord.Attachment) -> None:
    """Refuse what can be refused without downloading (before a slash command defers).

    Raises:
        NotLyricsFileError: not an ``.lrc``/``.txt`` file.
        LyricsFileTooLargeError: its declared size is over the limit.
    """
    if not is_lyrics_attachment(attachment):
        raise NotLyricsFileError(f"not a lyrics file: {attachment.filename[:64]!r}")
    if attachment.size > MAX_LYRICS_DOWNLOAD_BYTES:
        raise LyricsFileTooLargeError(f"lyrics file of {attachment.size} bytes declared")


async def read_lyrics(
    attachment: discord.Attachment, connector: aiohttp.BaseConnector
) -> LyricsUpload:
    """The attachment's bytes, bounded in size and time.

    Raises:
        NotLyricsFileError: not an ``.lrc``/``.txt`` file.
        LyricsFileTooLargeError: declared or found to be over the limit.
        LyricsDownloadError: Discord did not hand it out in time.
    """
    check_lyrics_attachment(attachment)
    content = bytearray()
    try:
        async with asyncio.timeout(DOWNLOAD_SECONDS):
            async for chunk in download(attachment.url, connector):
                content += chunk
                if len(content) > MAX_LYRICS_DOWNLOAD_BYTES:
                    raise LyricsFileTooLargeError("lyrics file larger than declared")
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise LyricsDownloadError(f"lyrics download failed: {exc!r}") from exc
    return LyricsUpload(bytes(content), attachment.filename)


def pasted_lyrics(content: str, bot_id: int) -> LyricsUpload | None:
    """The text of a message, without the mention of the bot; None when nothing is left."""
    text = re.sub(rf"<@!?{bot_id}>", "", content).strip()
    return LyricsUpload(text) if text else None


def control_token(message: discord.Message) -> str | None:
    """The control token in the buttons under ``message`` (one of the bot's results, or
    its question for lyrics); None when it carries no valid control data."""
    for row in message.components:
        for child in getattr(row, "children", [row]):
            custom_id = getattr(child, "custom_id", None) or ""
            if not custom_id.startswith(f"{PREFIX}:"):
                continue
            try:
                return ControlState.decode(custom_id).token
            except BadControlError:
                continue  # an old or forged button: maybe another one is ours
    return None


async def replied_message(message: discord.Message) -> discord.Message | None:
    """The message ``message`` replies to, as discord.py resolves it: sent along with the
    reply, else from the cache, else fetched once within :data:`FETCH_SECONDS`. None for
    no reply, a forward, a deleted message or one Discord will not hand out."""
    reference = message.reference
    if (
        reference is None
        or reference.message_id is None
        or reference.type is not discord.MessageReferenceType.reply
        or reference.channel_id != message.channel.id
    ):
        return None
    if isinstance(reference.resolved, discord.Message):
        return reference.resolved
    if isinstance(reference.resolved, discord.DeletedReferencedMessage):
        return None
    if reference.cached_message is not None:
        return reference.cached_message
    try:
        async with asyncio.timeout(FETCH_SECONDS):
            return await message.channel.fetch_message(reference.message_id)
    except (discord.HTTPException, TimeoutError):
        return None


def reply_token(replied: discord.Message | None, me: Any) -> str | None:
    """The control token of ``replied`` when it is one of this bot's own messages (a
    user's message carrying a copy of our button data names nothing)."""
    if replied is None or me is None or replied.author.id != me.id:
        return None
    return control_token(replied)
