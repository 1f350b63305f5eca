"""Lyrics sent as a reply to one of the bot's results: handed to the flow for that song.

A reply names its song by the buttons under the message it replies to (the result, or
the bot's question asking for the words), so it works in any channel the bot reads and
after a restart. Anything else is left to the adapter's usual handling, unchanged: a
reply carrying a song is a song, a reply to someone else's message (or to a bot message
without controls) is whatever it was before.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import discord

from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.ratelimit import RateDecision
from bot.chat.conversation.types import ChatUser, LyricsUpload, Replier
from bot.chat.discord.attachments import song_attachment
from bot.chat.discord.lyrics import (
    lyrics_attachment,
    pasted_lyrics,
    read_lyrics,
    replied_message,
    reply_token,
)
from separation.errors import LyricsInputError


class LyricsReplies:
    """Takes replies with lyrics on behalf of one ``DiscordAdapter``."""

    def __init__(
        self,
        flow: ChatFlow,
        *,
        admit: Callable[[ChatUser], RateDecision],
        user_of: Callable[[discord.User | discord.Member], ChatUser],
        replier_for: Callable[[discord.Message], Replier],
        connector: Callable[[], aiohttp.BaseConnector],
    ) -> None:
        self._flow = flow
        self._admit = admit
        self._user = user_of
        self._replier = replier_for
        self._connector = connector

    async def take(self, message: discord.Message, me: discord.abc.User) -> bool:
        """Hand ``message`` to the flow when it is lyrics in reply to one of the bot's
        messages with controls; False (nothing done) when it is anything else."""
        if message.reference is None or song_attachment(message) is not None:
            return False
        attachment = lyrics_attachment(message)
        pasted = None if attachment is not None else pasted_lyrics(message.content, me.id)
        if attachment is None and pasted is None:
            return False
        token = reply_token(await replied_message(message), me)
        if token is None:
            return False
        user = self._user(message.author)
        replier = self._replier(message)
        decision = self._admit(user)
        if not decision.allowed:
            if decision.notify:
                await replier.send_text(decision.notice())
            return True
        lyrics: LyricsUpload | None = pasted
        if attachment is not None:
            try:  # only this attachment is read, and only so much of it
                lyrics = await read_lyrics(attachment, self._connector())
            except LyricsInputError as exc:
                await replier.send_text(exc.user_message)
                return True
        assert lyrics is not None
        await self._flow.lyrics_reply(user, replier, token, lyrics)
        return True
