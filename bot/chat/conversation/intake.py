"""Songs accepted before their job exists, as the chat flow journals and resumes them.

The chat platforms send a message once: Telegram forgets an update when the next
``getUpdates`` confirms it, Discord's gateway never replays an event. A song then spends
a while without a job (downloading, its header checked, or waiting for a slot to do
either), and a crash in that while would lose it silently, its "Downloading your
song..." left forever. So the flow records each song (``storage.intake``) before the
adapter lets the platform consider it delivered, with everything needed to fetch it
again and run it as the user asked; at the next start each record left is resumed or
reported to its user as lost.

This module translates between the flow's values and that record.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.chat.conversation.link_source import link_of_ref, no_platform_stream
from bot.chat.conversation.order import SongOrder
from bot.chat.conversation.types import ByteStream, ChatUser, Conversation, SongUpload
from storage.intake import IntakeRecord, IntakeRequest
from storage.order import StoredOrder
from storage.records import ChatRef

MAX_AGE = timedelta(hours=24)
"""An accepted song older than this is reported as lost instead of fetched again: Discord's
attachment links expire within a day, and a song that arrives a day late surprises."""

_HINTS = ("title_hint", "performer_hint", "fallback_title")
"""The upload's display hints, kept with the record's options."""


def intake_request(
    conversation: Conversation,
    upload: SongUpload,
    order: SongOrder,
    *,
    holder: str | None,
) -> IntakeRequest | None:
    """The record of an accepted song; None when the platform gave no way to fetch it
    again (nothing could be resumed from such a record)."""
    if not upload.file_ref:
        return None
    options: dict[str, Any] = {
        **order.stored().to_json(),
        **{hint: value for hint in _HINTS if (value := getattr(upload, hint))},
    }
    return IntakeRequest(
        chat=ChatRef(
            chat_id=conversation.chat_id or None,
            guild_id=conversation.guild_id,
            channel_id=conversation.channel_id,
            message_id=conversation.message_id,
        ),
        file_ref=upload.file_ref,
        file_unique_id=upload.file_unique_id,
        file_name=upload.file_name,
        declared_size=upload.declared_size,
        options=options,
        holder=holder,
    )


def order_of(intake: IntakeRecord) -> SongOrder:
    """What the user asked for, read back from the record: the order's fields beside the
    display hints, read as :meth:`StoredOrder.from_legacy` reads them, since records
    written before the order was typed hold them the same way."""
    stored = StoredOrder.from_legacy(intake.options)
    return SongOrder.from_stored(stored, owner=f"accepted song {intake.id}")


def conversation_of(intake: IntakeRecord, user: ChatUser) -> Conversation:
    """Where the song came from, as the flow names it."""
    chat = intake.chat
    return Conversation(
        user.platform,
        chat.chat_id or chat.channel_id or "",
        guild_id=chat.guild_id,
        channel_id=chat.channel_id,
        message_id=chat.message_id,
        is_private=chat.guild_id is None,
    )


def link_of(intake: IntakeRecord) -> str | None:
    """The link an accepted song was sent as; None for a platform's file."""
    return link_of_ref(intake.file_ref)


def upload_of(intake: IntakeRecord, stream: ByteStream | None) -> SongUpload:
    """The song as it was sent, fetched again through ``stream`` (a link's: from its
    link, ``stream`` unused)."""

    def hint(name: str) -> str | None:
        value = intake.options.get(name)
        return value if isinstance(value, str) else None

    return SongUpload(
        stream=stream or no_platform_stream,
        file_name=intake.file_name,
        declared_size=intake.declared_size,
        title_hint=hint("title_hint"),
        performer_hint=hint("performer_hint"),
        fallback_title=hint("fallback_title"),
        file_ref=intake.file_ref,
        file_unique_id=intake.file_unique_id,
        link=link_of(intake),
    )
