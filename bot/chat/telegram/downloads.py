"""Songs fetched from Telegram: what a message carries, streamed from the Bot API (or
from the local Bot API server's disk in local mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiofiles
import httpx
from telegram import Message
from telegram.error import BadRequest

from bot.chat.conversation import messages
from bot.chat.conversation.types import ByteStream, SongUpload
from bot.chat.telegram.bot_api import retry_network
from storage.errors import UploadTooLargeError

if TYPE_CHECKING:
    from bot.chat.telegram.bot_api import TelegramApplication

DOWNLOAD_CHUNK = 1 << 16


def song_upload(message: Message, download_again: Callable[[str], ByteStream]) -> SongUpload:
    """The song ``message`` carries (audio, voice, video, video note or document),
    fetched through ``download_again`` from its ``file_id``."""
    media = (
        message.audio or message.voice or message.video or message.video_note or message.document
    )
    assert media is not None
    file_name = getattr(media, "file_name", None)
    title = getattr(media, "title", None)
    performer = getattr(media, "performer", None)
    voice = message.voice is not None or message.video_note is not None

    return SongUpload(
        stream=download_again(media.file_id),
        file_name=file_name,
        declared_size=media.file_size,
        title_hint=title,
        performer_hint=performer,
        fallback_title=messages.VOICE_MESSAGE if voice else None,
        file_ref=media.file_id,
        file_unique_id=media.file_unique_id,
    )


async def stream_file(
    application: TelegramApplication, file_id: str, *, local_mode: bool, max_download_bytes: int
) -> AsyncIterator[bytes]:
    """Stream a file from the Bot API (or the local server's disk in local mode).

    Raises:
        UploadTooLargeError: the Bot API will not hand out a file this big (20 MB).
    """
    try:
        telegram_file = await retry_network(
            lambda: application.bot.get_file(file_id), what="getFile"
        )
    except BadRequest as exc:
        if "file is too big" not in exc.message.lower():
            raise
        raise UploadTooLargeError(max_bytes=max_download_bytes) from exc
    path = telegram_file.file_path or ""
    if local_mode and not path.startswith(("http://", "https://")):
        async with aiofiles.open(Path(path), "rb") as handle:
            while chunk := await handle.read(DOWNLOAD_CHUNK):
                yield chunk
        return
    # httpx is PTB's own HTTP client; its request log lines (which would contain the
    # token in the URL) are silenced in logging_setup.
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client,
        client.stream("GET", path) as response,
    ):
        response.raise_for_status()
        async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK):
            yield chunk
