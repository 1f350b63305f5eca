"""Lyrics sent to the bot on Telegram (issue 24): a reply to one of its messages that
carries karaoke buttons (a result, or its question for the words), with the words as
text or as an ``.lrc``/``.txt`` document.

The replied-to message's buttons name the song (``replier.control_data``); everything
else about it is the flow's (``ChatFlow.lyrics_reply``). A document is downloaded only
up to ``MAX_LYRICS_DOWNLOAD_BYTES``: its declared size is checked first, and the bytes
are counted as they arrive, since a declared size can lie.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram import Message
from telegram.ext import filters

from bot.chat.conversation import messages
from bot.chat.conversation.types import MAX_LYRICS_DOWNLOAD_BYTES, LyricsUpload
from bot.chat.telegram.downloads import stream_file
from bot.chat.telegram.replier import control_data

if TYPE_CHECKING:
    from bot.chat.telegram.bot_api import TelegramApplication

LYRICS_DOCUMENT = filters.Document.FileExtension("lrc") | filters.Document.FileExtension("txt")
"""A document that may hold lyrics (any other document stays what it was: a song, or
"not a song")."""


class _RepliesToOurButtons(filters.MessageFilter):
    """A reply to a message of ours that carries karaoke buttons."""

    def filter(self, message: Message) -> bool:
        replied = message.reply_to_message
        author = replied.from_user if replied is not None else None
        return author is not None and author.is_bot and control_data(replied) is not None


REPLY_TO_OUR_BUTTONS = _RepliesToOurButtons(name="RepliesToOurButtons")
LYRICS_REPLY = REPLY_TO_OUR_BUTTONS & ((filters.TEXT & ~filters.COMMAND) | LYRICS_DOCUMENT)
"""What :func:`lyrics_of` takes: the words as text or a lyrics document, in reply to us."""


class LyricsTooBigError(Exception):
    """A lyrics document over :data:`MAX_LYRICS_DOWNLOAD_BYTES` (declared or counted)."""

    user_message = messages.lyrics_file_too_large(MAX_LYRICS_DOWNLOAD_BYTES)


async def lyrics_of(
    message: Message, application: TelegramApplication, *, local_mode: bool
) -> LyricsUpload:
    """The lyrics ``message`` carries: its text, or its document's bytes.

    Raises:
        LyricsTooBigError: the document is over the limit (nothing more is read).
    """
    document = message.document
    if document is None:
        return LyricsUpload(message.text or "")
    if (document.file_size or 0) > MAX_LYRICS_DOWNLOAD_BYTES:
        raise LyricsTooBigError()
    content = bytearray()
    async for chunk in stream_file(
        application,
        document.file_id,
        local_mode=local_mode,
        max_download_bytes=MAX_LYRICS_DOWNLOAD_BYTES,
    ):
        content += chunk
        if len(content) > MAX_LYRICS_DOWNLOAD_BYTES:
            raise LyricsTooBigError()
    return LyricsUpload(bytes(content), document.file_name)
