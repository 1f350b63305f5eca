"""The slash commands' answers (``bot.chat.discord.commands.SlashHandler``).

``/karaoke file:<attachment>`` (or ``url:<link>``: exactly one) is deferred at once;
progress edits that response and the results come as a followup
(``bot.chat.discord.replies``), moved to the channel before the interaction's token
expires. ``/video`` is deferred alike, and the flow makes the
latest song's video (with the lyrics of its options, read bounded like any lyrics file:
``bot.chat.discord.lyrics``) in a task. The other commands answer so that only the user
sees it. These run in discord.py's command-tree tasks: the songs they start are tracked by
the adapter, their immediate answers are not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import aiohttp
import discord
from discord import app_commands

from bot.chat.conversation import messages
from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.types import (
    ChatUser,
    Conversation,
    LyricsUpload,
    Replier,
    error_reference,
)
from bot.chat.discord.attachments import is_song_attachment
from bot.chat.discord.commands import FormatChoice
from bot.chat.discord.lyrics import check_lyrics_attachment, read_lyrics
from bot.chat.discord.replies import InteractionReplier, upload_plan
from bot.links.classify import Link, link_in
from bot.links.errors import LinkError
from bot.settings import DiscordSettings
from separation.audio.encode import StemMode
from separation.audio.render_options import RenderOptions
from separation.errors import LyricsInputError, RenderUnavailableError

logger = logging.getLogger(__name__)


class SongStarter(Protocol):
    """The adapter's way to start a song (recorded, then run in a task it tracks)."""

    async def __call__(
        self,
        user: ChatUser,
        conversation: Conversation,
        replier: Replier,
        song: discord.Attachment | Link,
        *,
        stems: StemMode = "two",
        output_format: FormatChoice | None = None,
        controls: RenderOptions | None = None,
        lyrics: LyricsUpload | None = None,
    ) -> asyncio.Task[Any]: ...


class SlashCommands:
    """What each slash command does, on behalf of one :class:`DiscordAdapter`."""

    def __init__(
        self,
        *,
        settings: DiscordSettings,
        flow: ChatFlow,
        min_bitrate: int,
        user_of: Callable[[discord.User | discord.Member], ChatUser],
        start_song: SongStarter,
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        accepting: Callable[[], bool],
        connector: Callable[[], aiohttp.BaseConnector],
    ) -> None:
        self._settings = settings
        self._flow = flow
        self._min_bitrate = min_bitrate
        self._user = user_of
        self._start_song = start_song
        self._spawn = spawn
        self._accepting = accepting
        self._connector = connector

    async def _admit(self, interaction: discord.Interaction, user: ChatUser) -> bool:
        """Refuse (with an answer only the user sees) while stopping or over the rate."""
        if not self._accepting():
            await interaction.response.send_message(messages.STOPPING, ephemeral=True)
            return False
        decision = self._flow.admit(user)
        if not decision.allowed:
            # Every interaction needs an answer; an ephemeral one never spams the channel.
            await interaction.response.send_message(decision.notice(), ephemeral=True)
            return False
        return True

    async def karaoke(
        self,
        interaction: discord.Interaction,
        file: discord.Attachment | None,
        stems: StemMode,
        output_format: FormatChoice | None,
        controls: RenderOptions | None = None,
        lyrics: discord.Attachment | None = None,
        url: str | None = None,
    ) -> None:
        """/karaoke: defer at once, then the flow runs the song in its own task."""
        user = self._user(interaction.user)
        if not await self._admit(interaction, user):
            return
        song = await self._song_option(interaction, file, url)
        if song is None:
            return
        if controls is not None and not controls.is_identity and not self._flow.rerender.available:
            await interaction.response.send_message(
                RenderUnavailableError().user_message, ephemeral=True
            )
            return
        if not await self._lyrics_acceptable(interaction, lyrics):
            return
        replier, response_id = await self._defer(interaction)
        song_lyrics = await self._read_lyrics(replier, lyrics, None)
        if lyrics is not None and song_lyrics is None:
            return  # the lyrics were refused (said in the response): so is the song
        channel_id = str(interaction.channel_id) if interaction.channel_id else ""
        conversation = Conversation(
            "discord",
            channel_id,
            guild_id=str(interaction.guild_id) if interaction.guild_id else None,
            channel_id=channel_id or None,
            message_id=str(response_id) if response_id else None,
            is_private=interaction.guild_id is None,
        )
        started = await self._start_song(
            user,
            conversation,
            replier,
            song,
            stems=stems,
            output_format=output_format,
            controls=controls,
            lyrics=song_lyrics,
        )
        self._spawn(self._move_before_expiry(started, replier))

    async def _song_option(
        self, interaction: discord.Interaction, file: discord.Attachment | None, url: str | None
    ) -> discord.Attachment | Link | None:
        """The song ``/karaoke`` names: its file or its link, exactly one; None when it
        was refused (only the user sees why)."""
        refusal = messages.FILE_OR_LINK
        if file is not None and url is None:
            if is_song_attachment(file):
                return file
            refusal = messages.NOT_A_SONG
        elif url is not None and file is None:
            try:
                link = link_in(url)
            except LinkError as error:
                link, refusal = None, messages.link_refused(error.kind, error.site)
            if link is not None:
                return link
        await interaction.response.send_message(refusal, ephemeral=True)
        return None

    async def video(
        self,
        interaction: discord.Interaction,
        lyrics: discord.Attachment | None,
        text: str | None,
    ) -> None:
        """/video: the latest song's karaoke video, made by the flow in a task of its own;
        with lyrics (a file, else the text), those are kept for that song first."""
        user = self._user(interaction.user)
        if not await self._admit(interaction, user):
            return
        if not await self._lyrics_acceptable(interaction, lyrics):
            return
        replier, _ = await self._defer(interaction)
        given = await self._read_lyrics(replier, lyrics, text)
        if lyrics is not None and given is None:
            return  # refused, and said so in the response
        if given is None:
            making = self._spawn(self._flow.video_command(user, replier, None))
        else:
            making = self._spawn(self._flow.lyrics_for_latest(user, replier, given))
        self._spawn(self._move_before_expiry(making, replier))

    async def _lyrics_acceptable(
        self, interaction: discord.Interaction, lyrics: discord.Attachment | None
    ) -> bool:
        """Refuse a lyrics option that is not a lyrics file or declares too many bytes
        (only the user sees it), before deferring and without downloading."""
        if lyrics is None:
            return True
        try:
            check_lyrics_attachment(lyrics)
        except LyricsInputError as exc:
            await interaction.response.send_message(exc.user_message, ephemeral=True)
            return False
        return True

    async def _read_lyrics(
        self, replier: InteractionReplier, lyrics: discord.Attachment | None, text: str | None
    ) -> LyricsUpload | None:
        """The lyrics option's file (bounded), else ``text``; a refusal is shown in the
        command's response and gives None."""
        if lyrics is None:
            return LyricsUpload(text) if text and text.strip() else None
        try:
            return await read_lyrics(lyrics, self._connector())
        except LyricsInputError as exc:
            await replier.send_text(exc.user_message)
            return None

    async def _defer(
        self, interaction: discord.Interaction
    ) -> tuple[InteractionReplier, int | None]:
        """Defer ("thinking...") and the replier that answers in that response; with the
        response's message id when Discord gave it."""
        response_id: int | None = None
        deferred = True
        try:
            callback = await interaction.response.defer(thinking=True)
            response_id = callback.message_id if callback is not None else None
        except discord.HTTPException as exc:  # e.g. the 3 s window passed: use the channel
            logger.warning("discord: could not defer /%s (%s)", _name(interaction), exc.status)
            deferred = False
        replier = InteractionReplier(
            interaction,
            upload_plan(interaction.filesize_limit),
            min_bitrate=self._min_bitrate,
            token_seconds=self._settings.interaction_token_seconds,
            deferred=deferred,
        )
        return replier, response_id

    async def _answer(
        self, interaction: discord.Interaction, produce: Callable[[ChatUser], Awaitable[str]]
    ) -> None:
        """Defer (only the user sees it), then show what ``produce`` returns."""
        user = self._user(interaction.user)
        if not await self._admit(interaction, user):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.edit_original_response(content=await produce(user))

    async def quota(self, interaction: discord.Interaction) -> None:
        """/quota: what the user has left today (only they see it)."""
        await self._answer(interaction, self._flow.quota)

    async def status(self, interaction: discord.Interaction) -> None:
        """/status: the queue and the user's songs."""
        await self._answer(interaction, self._flow.status)

    async def cancel(self, interaction: discord.Interaction) -> None:
        """/cancel: the user's newest song; its own progress message says "Cancelled."."""
        await self._answer(interaction, self._flow.cancel)

    async def help(self, interaction: discord.Interaction) -> None:
        """/help: the flow's help, with this channel's upload limit."""
        note = messages.discord_help_note(interaction.filesize_limit)

        async def produce(user: ChatUser) -> str:
            return self._flow.help(commands=messages.DISCORD_HELP_COMMANDS, platform_note=note)

        await self._answer(interaction, produce)

    async def admin(self, interaction: discord.Interaction, command: str, args: list[str]) -> None:
        """/admin ...: only for the configured user ids and roles."""
        if not self._user(interaction.user).is_admin:
            await interaction.response.send_message(messages.NOT_ADMIN, ephemeral=True)
            return

        async def produce(user: ChatUser) -> str:
            return await self._flow.admin_command(command, args)

        await self._answer(interaction, produce)

    async def on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Log with a reference id and tell the user, once, without a traceback."""
        reference = error_reference()
        cause = getattr(error, "original", error)
        logger.error("discord command error ref=%s: %s", reference, cause, exc_info=cause)
        text = messages.internal_error(reference)
        try:
            if interaction.response.is_done():
                await interaction.edit_original_response(content=text)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException as exc:
            logger.info("discord: could not report error ref=%s: %s", reference, exc.status)

    async def _move_before_expiry(
        self, song: asyncio.Task[Any], replier: InteractionReplier
    ) -> None:
        """Near the token's expiry, tell the user the result will come in the channel."""
        await asyncio.wait({song}, timeout=replier.seconds_until_move())
        if song.done():
            return
        try:
            await replier.move_to_channel()
        except Exception as exc:  # best effort: the next progress update moves anyway
            logger.warning("discord: could not announce the move to the channel: %s", exc)


def _name(interaction: discord.Interaction) -> str:
    command = interaction.command
    return command.name if command is not None else "command"
