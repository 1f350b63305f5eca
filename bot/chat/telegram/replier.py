"""Answering in one Telegram chat: texts, edits, and result files with their controls.

Karaoke controls travel as an inline keyboard under each result file; a control command
(or lyrics, issue 24) sent in reply to a result finds its song through the first
button's data. A karaoke video goes with ``sendVideo`` (streamable, with its size and
length, so the player shows it before it is downloaded); the question for a song's
words carries a button so that a reply to it names the song too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.chat.conversation.controls import PREFIX as CONTROL_PREFIX
from bot.chat.conversation.controls import BadControlError, Button, current_state
from bot.chat.conversation.types import OutgoingFile, UploadPlan
from bot.chat.telegram.bot_api import (
    NETWORK_ATTEMPTS,
    TelegramUploadTooLargeError,
    is_too_big,
    retry_network,
)

if TYPE_CHECKING:
    from bot.chat.telegram.bot_api import TelegramApplication


@dataclass
class TelegramReplier:
    """Answers in one chat, replying to the message that brought the song."""

    application: TelegramApplication
    chat_id: int
    reply_to: int | None
    plan: UploadPlan

    @property
    def upload_plan(self) -> UploadPlan:
        return self.plan

    async def send_text(self, text: str) -> Message:
        return await self.send_text_with_buttons(text, [])

    async def send_text_with_buttons(self, text: str, rows: list[list[Button]]) -> Message:
        """A message with an inline keyboard (none when ``rows`` is empty)."""
        return await retry_network(
            lambda: self.application.bot.send_message(
                self.chat_id,
                text,
                reply_markup=keyboard(rows),
                reply_to_message_id=self.reply_to,
                allow_sending_without_reply=True,
            ),
            what="sendMessage",
        )

    async def edit_text(self, handle: Message | int, text: str) -> None:
        message_id = handle if isinstance(handle, int) else handle.message_id
        try:
            await retry_network(
                lambda: self.application.bot.edit_message_text(
                    text, chat_id=self.chat_id, message_id=message_id
                ),
                what="editMessageText",
            )
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise

    def message_ref(self, handle: Message) -> str | None:
        return str(handle.message_id)

    def message_handle(self, ref: str) -> int | None:
        return int(ref) if ref.isdigit() else None

    async def send_files(self, files: list[OutgoingFile]) -> None:
        for file in files:
            # PTB reads the whole file into the multipart body anyway; read it off the loop.
            content = await asyncio.to_thread(file.path.read_bytes)
            # Only a connection failure before anything was sent is retried: a timed-out
            # upload may have arrived, and a duplicate file is worse than an error.
            for attempt in range(1, NETWORK_ATTEMPTS + 1):
                try:
                    await self._send_file(file, content)
                    break
                except TimedOut:
                    raise
                except NetworkError as exc:
                    if is_too_big(exc):  # the plan's limit is more than this server takes
                        raise TelegramUploadTooLargeError(
                            duration_seconds=file.duration_seconds or 0.0,
                            budget_bytes=self.plan.max_file_bytes,
                            min_bitrate=0,
                        ) from exc
                    if isinstance(exc, BadRequest) or attempt == NETWORK_ATTEMPTS:
                        raise
                    await asyncio.sleep(0.5 * attempt)

    async def _send_file(self, file: OutgoingFile, content: bytes) -> Message:
        """One upload: ``sendVideo`` for a karaoke video, ``sendAudio`` for the rest."""
        common: dict[str, Any] = {
            "filename": file.filename,
            "duration": round(file.duration_seconds or 0) or None,
            "reply_markup": keyboard(file.controls),
            "reply_to_message_id": self.reply_to,
            "allow_sending_without_reply": True,
            "read_timeout": 120,
            "write_timeout": 120,
        }
        bot = self.application.bot
        if file.is_video:
            return await bot.send_video(
                self.chat_id,
                video=content,
                caption=file.title,
                width=file.width,
                height=file.height,
                supports_streaming=True,
                **common,
            )
        return await bot.send_audio(
            self.chat_id, audio=content, title=file.title, performer=file.performer, **common
        )


def keyboard(rows: list[list[Button]] | None) -> InlineKeyboardMarkup | None:
    """Karaoke controls as an inline keyboard under the file (callback data: the button's)."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(button.label, callback_data=button.data) for button in row]
         for row in rows]
    )  # fmt: skip


def control_data(message: Message | None) -> str | None:
    """The state ``message`` (a result we sent, or our question for a song's words) is
    in, as control data, from the buttons under it (``controls.current_state``); the
    first button's data when they do not decode (the flow refuses it), None without
    buttons of ours."""
    markup = message.reply_markup if message is not None else None
    data = [
        button.callback_data
        for row in (markup.inline_keyboard if markup is not None else ())
        for button in row
        if isinstance(button.callback_data, str)
        and button.callback_data.startswith(f"{CONTROL_PREFIX}:")
    ]
    if not data:
        return None
    try:
        return current_state(data).encode()
    except BadControlError:
        return data[0]
