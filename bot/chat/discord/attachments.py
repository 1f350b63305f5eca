"""Which Discord attachments (and message links) are songs, and streaming one to the store.

Discord sends a content type for most uploads but not all (some clients, some file
types), so the file name's extension is the fallback. Downloads stream in chunks: the
flow refuses an attachment from its declared size first, and the store enforces the byte
limit while writing, so a size that lies cannot fill the disk.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator

import aiohttp
import discord

from bot.chat.conversation import messages
from bot.chat.conversation.types import ByteStream, LyricsUpload, SongUpload
from bot.links.classify import Link, link_in
from bot.links.errors import LinkError

_CHUNK_BYTES = 1 << 16
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
"""No total limit (big files on slow links are fine), but a stalled download ends."""


def is_song_attachment(attachment: discord.Attachment) -> bool:
    """Audio or video, by Discord's content type or else the file name's extension."""
    content_type = attachment.content_type or mimetypes.guess_type(attachment.filename)[0] or ""
    return content_type.split(";")[0].strip().lower().startswith(("audio/", "video/"))


def song_attachment(message: discord.Message) -> discord.Attachment | None:
    """The message's first audio or video attachment."""
    return next((a for a in message.attachments if is_song_attachment(a)), None)


def song_of(
    message: discord.Message, *, addressed: bool
) -> discord.Attachment | Link | LinkError | None:
    """What ``message`` offers as a song: its audio or video attachment, else the link in
    its text (a bad link as its refusal), else, when it addresses the bot ("@bot" in
    reply to a song), the attachment of the message it replies to."""
    attachment = song_attachment(message)
    if attachment is not None:
        return attachment
    try:
        link = link_in(message.content)
    except LinkError as error:
        return error
    if link is not None:
        return link
    replied = message.reference.resolved if message.reference is not None else None
    if addressed and isinstance(replied, discord.Message):
        return song_attachment(replied)
    return None


def song_upload(
    attachment: discord.Attachment,
    connector: aiohttp.BaseConnector,
    lyrics: LyricsUpload | None = None,
) -> SongUpload:
    """The flow's view of an attachment; nothing is downloaded until it asks.

    Args:
        connector: discord.py's own (``client.http.connector``), so downloads share its
            connection pool and proxy setup.
        lyrics: the lyrics sent with the song (``/karaoke lyrics:``), already read.
    """
    return SongUpload(
        stream=attachment_stream(attachment.url, connector),
        file_name=attachment.filename,
        declared_size=attachment.size,
        title_hint=messages.VOICE_MESSAGE if attachment.is_voice_message() else None,
        file_ref=attachment.url,
        file_unique_id=str(attachment.id),
        lyrics=lyrics,
    )


def attachment_stream(url: str, connector: aiohttp.BaseConnector) -> ByteStream:
    """Opens the download of the attachment at ``url`` (also after a restart)."""

    def stream() -> AsyncIterator[bytes]:
        return download(url, connector)

    return stream


async def download(url: str, connector: aiohttp.BaseConnector) -> AsyncIterator[bytes]:
    """Stream ``url`` in chunks; the consumer stops reading once it has enough."""
    async with (
        aiohttp.ClientSession(
            connector=connector, connector_owner=False, timeout=_TIMEOUT
        ) as session,
        session.get(url) as response,
    ):
        response.raise_for_status()
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            yield chunk
