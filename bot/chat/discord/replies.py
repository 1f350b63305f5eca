"""How the chat flow's replies reach Discord: channel messages, slash-command responses, files.

Two kinds of conversation. An ordinary message is answered by replying to it in its
channel. A slash command was deferred at once; its progress edits that deferred response
and the results arrive as a followup. An interaction token only lives 15 minutes, so a
slash-command replier moves to plain channel messages that mention the user shortly
before then: a song that waited in a long queue must not lose its result.

Discord caps what one message may carry (10 MiB by default, 50 and 100 MiB in boosted
servers). The pool already lowered the MP3 bitrate so each file fits; here files are
grouped into as few messages as the limit allows, and a file that alone cannot fit (a
FLAC, or a limit that shrank: Discord answers 413) is a typed error the flow explains to
the user, refunding the song. A karaoke video (``OutgoingFile.is_video``, an MP4 the
renderer sized for the plan's limit) is an attachment like the others, alone in its
message with its control buttons; Discord's clients play it inline. A text can carry
buttons too (the flow's question for a video's lyrics: a reply to it names the song).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.chat.conversation import messages
from bot.chat.conversation.controls import Button
from bot.chat.conversation.types import OutgoingFile, UploadPlan
from bot.chat.discord.controls import control_view, with_view
from separation.errors import OutputTooLargeError

logger = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
"""10 MiB: DMs and servers without boosts."""
MAX_DOWNLOAD_BYTES = 500 * 2**20
"""The largest attachment a (Nitro) user can post; ``audio.max_input_bytes`` is lower."""
MAX_FILES_PER_MESSAGE = 10
_EXPIRY_MARGIN_SECONDS = 60.0
"""Stop using the interaction token this long before it expires (a big upload takes time)."""
_TOKEN_ERRORS = (401, 404)
"""Invalid Webhook Token / Unknown Webhook: the interaction token is no longer usable."""
_TOO_LARGE = 413
MOVED_NOTICE = messages.MOVED_TO_CHANNEL


class DiscordUploadTooLargeError(OutputTooLargeError):
    """A result file does not fit this channel's upload limit (or Discord refused it)."""


def upload_plan(limit_bytes: int | None) -> UploadPlan:
    """The plan for a channel whose per-message upload limit is ``limit_bytes``.

    Args:
        limit_bytes: ``guild.filesize_limit`` or the interaction's attachment limit;
            None for the default (DMs, or a server not in the cache).
    """
    limit = limit_bytes or DEFAULT_UPLOAD_LIMIT
    return UploadPlan(
        max_file_bytes=limit, max_download_bytes=MAX_DOWNLOAD_BYTES, max_message_bytes=limit
    )


def plan_for_guild(guild: discord.Guild | None) -> UploadPlan:
    """Boosted servers accept bigger files; DMs use the default limit."""
    return upload_plan(guild.filesize_limit if guild is not None else None)


def group_files(
    files: list[OutgoingFile], plan: UploadPlan, *, min_bitrate: int
) -> list[list[OutgoingFile]]:
    """Split ``files`` (kept in order) into as few messages as the plan's limits allow;
    a karaoke video goes in a message of its own, under its own buttons.

    Raises:
        DiscordUploadTooLargeError: a file alone is over ``plan.max_file_bytes``; checked
            before anything is sent, so the user never gets half a result.
    """
    per_message = plan.max_message_bytes or plan.max_file_bytes
    groups: list[list[OutgoingFile]] = []
    group_bytes = 0
    for file in files:
        size = file.path.stat().st_size
        if size > plan.max_file_bytes:
            raise _too_large(file, plan, min_bitrate)
        fits = groups and len(groups[-1]) < MAX_FILES_PER_MESSAGE
        alone = file.is_video or bool(groups and groups[-1][0].is_video)
        if fits and not alone and group_bytes + size <= per_message:
            groups[-1].append(file)
            group_bytes += size
        else:
            groups.append([file])
            group_bytes = size
    return groups


def _too_large(
    file: OutgoingFile, plan: UploadPlan, min_bitrate: int
) -> DiscordUploadTooLargeError:
    return DiscordUploadTooLargeError(
        duration_seconds=file.duration_seconds or 0.0,
        budget_bytes=plan.max_file_bytes,
        min_bitrate=min_bitrate,
    )


SendGroup = Callable[[list[OutgoingFile]], Awaitable[Any]]


def as_attachments(group: list[OutgoingFile]) -> list[discord.File]:
    """Fresh ``discord.File`` objects: discord.py closes them after each attempt."""
    return [discord.File(file.path, filename=file.filename) for file in group]


async def send_grouped(
    files: list[OutgoingFile], plan: UploadPlan, *, min_bitrate: int, send: SendGroup
) -> None:
    """Send ``files`` one message per group through ``send``; a 413 becomes the typed error."""
    for group in group_files(files, plan, min_bitrate=min_bitrate):
        try:
            await send(group)
        except discord.HTTPException as exc:
            if exc.status == _TOO_LARGE:
                logger.info("discord refused %d file(s) as too large (413)", len(group))
                raise _too_large(group[0], plan, min_bitrate) from exc
            raise


class ChannelReplier:
    """Posts in one channel: as replies to the user's message, or mentioning the user."""

    def __init__(
        self,
        channel: discord.abc.Messageable,
        plan: UploadPlan,
        *,
        min_bitrate: int,
        reply_to: discord.Message | discord.PartialMessage | None = None,
        mention: discord.abc.Snowflake | None = None,
    ) -> None:
        self._channel = channel
        self._plan = plan
        self._min_bitrate = min_bitrate
        self._reference = reply_to.to_reference(fail_if_not_exists=False) if reply_to else None
        self._mention = mention

    @property
    def upload_plan(self) -> UploadPlan:
        return self._plan

    def _content(self, text: str | None) -> str | None:
        if self._mention is None:
            return text
        return f"<@{self._mention.id}> {text}" if text else f"<@{self._mention.id}>"

    def _allowed(self, *, ping: bool) -> discord.AllowedMentions:
        # User file names end up in texts: never let one ping @everyone or a role.
        users = [self._mention] if ping and self._mention is not None else False
        return discord.AllowedMentions(everyone=False, roles=False, users=users, replied_user=ping)

    async def send_text(self, text: str) -> discord.Message:
        # A reply's progress does not ping (the results will); a moved job's first message
        # does, since the user is no longer looking at the command's response.
        return await self._post(self._content(text), ping=self._mention is not None)

    async def send_text_with_buttons(self, text: str, rows: list[list[Button]]) -> discord.Message:
        """A text with buttons under it (``videos.AsksWithButtons``)."""
        view = control_view(rows)
        return await self._post(self._content(text), ping=self._mention is not None, view=view)

    async def _post(
        self,
        content: str | None,
        *,
        ping: bool,
        files: list[discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> discord.Message:
        """One message in the channel, a reply to the user's message when there is one."""
        # discord.py takes no ``reference=None`` or ``files=None`` (by its types): leave out.
        options: dict[str, Any] = {"allowed_mentions": self._allowed(ping=ping), **with_view(view)}
        if self._reference is not None:
            options["reference"] = self._reference
        if files is not None:
            options["files"] = files
        return await self._channel.send(content, **options)

    async def edit_text(self, handle: discord.Message | discord.PartialMessage, text: str) -> None:
        await handle.edit(content=self._content(text), allowed_mentions=self._allowed(ping=False))

    def message_ref(self, handle: discord.Message) -> str | None:
        return str(handle.id)

    def message_handle(self, ref: str) -> discord.PartialMessage | None:
        get = getattr(self._channel, "get_partial_message", None)
        return get(int(ref)) if get is not None and ref.isdigit() else None

    async def send_files(self, files: list[OutgoingFile]) -> None:
        await send_grouped(files, self._plan, min_bitrate=self._min_bitrate, send=self.send_group)

    async def send_group(self, group: list[OutgoingFile]) -> None:
        """One message with ``group`` attached (already checked against the plan)."""
        await self._post(
            self._content(None), ping=True, files=as_attachments(group), view=group_view(group)
        )


def reply_replier(message: discord.Message, *, min_bitrate: int) -> ChannelReplier:
    """Answers a user's message in its channel, in reply to it."""
    return ChannelReplier(
        message.channel, plan_for_guild(message.guild), min_bitrate=min_bitrate, reply_to=message
    )


class PressReplier(ChannelReplier):
    """Answers a control press: the files and progress in the channel like any reply, a
    refusal (a stranger's press, a broken button) only to the presser, as an ephemeral
    followup of the press's interaction (flag 64, issue 23): nobody else sees it.

    The press was acknowledged already (``bot.chat.discord.controls``), so a followup is
    what its interaction still allows, for 15 minutes; a refusal comes within seconds.
    """

    def __init__(
        self,
        interaction: discord.Interaction,
        channel: discord.abc.Messageable,
        plan: UploadPlan,
        *,
        min_bitrate: int,
    ) -> None:
        super().__init__(
            channel,
            plan,
            min_bitrate=min_bitrate,
            reply_to=interaction.message,
            mention=interaction.user if interaction.guild is not None else None,
        )
        self._interaction = interaction

    async def answer_privately(self, text: str) -> None:
        await self._interaction.followup.send(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


def group_view(group: list[OutgoingFile]) -> discord.ui.View | None:
    """The karaoke controls of the message carrying ``group`` (its instrumental's)."""
    return control_view(next((file.controls for file in group if file.controls), None))


class InteractionReplier:
    """Answers a deferred slash command, then the channel once the token is about to expire.

    Progress edits the deferred ("thinking") response and the files come as a followup.
    From ``token_seconds`` minus a margin on (or as soon as Discord refuses the token), the
    rest goes to the channel: one progress message mentioning the user, edited in place,
    and the files mentioning the user again.
    """

    def __init__(
        self,
        interaction: discord.Interaction,
        plan: UploadPlan,
        *,
        min_bitrate: int,
        token_seconds: float,
        deferred: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interaction = interaction
        self._plan = plan
        self._min_bitrate = min_bitrate
        self._clock = clock
        now = clock()
        self._expires_at = now + token_seconds
        self._use_until = now + token_seconds - min(_EXPIRY_MARGIN_SECONDS, token_seconds / 10)
        self._channel: ChannelReplier | None = None
        self._channel_message: discord.Message | None = None
        self._edits = asyncio.Lock()  # the move's notice lands after an edit in flight
        if not deferred:
            self._channel = self._make_channel_replier()

    @property
    def upload_plan(self) -> UploadPlan:
        return self._plan

    def seconds_until_move(self) -> float:
        """How long the interaction token may still be used for this job."""
        return max(0.0, self._use_until - self._clock())

    async def move_to_channel(self) -> None:
        """Switch to channel messages now (the token is about to expire mid-job)."""
        await self._move_to_channel("token about to expire", announce=True)

    def _token_usable(self) -> bool:
        return self._channel is None and self._clock() < self._use_until

    async def send_text(self, text: str) -> str:
        await self._show(text)
        return "progress"  # one progress message per replier: the state lives here

    async def edit_text(self, handle: Any, text: str) -> None:
        await self._show(text)

    def message_ref(self, handle: Any) -> str | None:
        return None  # the command's response: after a restart its token is gone

    def message_handle(self, ref: str) -> Any | None:
        return None

    async def send_files(self, files: list[OutgoingFile]) -> None:
        await send_grouped(files, self._plan, min_bitrate=self._min_bitrate, send=self._send_group)

    async def send_text_with_buttons(self, text: str, rows: list[list[Button]]) -> Any:
        """A text with buttons under it (``videos.AsksWithButtons``), as a followup."""
        view = control_view(rows)
        return await self._followup_or_channel(
            lambda: self._interaction.followup.send(text, wait=True, **with_view(view)),
            lambda channel: channel.send_text_with_buttons(text, rows),
        )

    async def _send_group(self, group: list[OutgoingFile]) -> None:
        view = group_view(group)
        await self._followup_or_channel(
            lambda: self._interaction.followup.send(
                files=as_attachments(group), wait=True, **with_view(view)
            ),
            lambda channel: channel.send_group(group),
        )

    async def _followup_or_channel(
        self,
        followup: Callable[[], Awaitable[Any]],
        in_channel: Callable[[ChannelReplier], Awaitable[Any]],
    ) -> Any:
        """``followup`` while the token lasts, else (or once Discord refuses the token)
        ``in_channel``."""
        if self._token_usable():
            try:
                return await followup()
            except discord.HTTPException as exc:
                if exc.status not in _TOKEN_ERRORS:
                    raise
                await self._move_to_channel(f"followup refused ({exc.status})", announce=False)
        return await in_channel(await self._channel_replier())

    async def _show(self, text: str) -> None:
        async with self._edits:
            if self._token_usable():
                try:
                    await self._interaction.edit_original_response(content=text)
                    return
                except discord.HTTPException as exc:
                    if exc.status not in _TOKEN_ERRORS:
                        raise
                    await self._move_to_channel(f"edit refused ({exc.status})", announce=False)
        channel = await self._channel_replier()
        if self._channel_message is None:
            self._channel_message = await channel.send_text(text)
        else:
            await channel.edit_text(self._channel_message, text)

    async def _channel_replier(self) -> ChannelReplier:
        if self._channel is None:
            await self.move_to_channel()
        assert self._channel is not None
        return self._channel

    async def _move_to_channel(self, reason: str, *, announce: bool) -> None:
        """From now on, post in the channel; say so in the response while it still works."""
        if self._channel is not None:
            return
        self._channel = self._make_channel_replier()
        logger.info(
            "discord: interaction %s moves to the channel: %s", self._interaction.id, reason
        )
        if announce and self._clock() < self._expires_at:
            async with self._edits:
                try:
                    await self._interaction.edit_original_response(content=MOVED_NOTICE)
                except discord.HTTPException as exc:  # best effort: the token may be gone
                    logger.info("discord: could not edit the expiring response: %s", exc.status)

    def _make_channel_replier(self) -> ChannelReplier:
        interaction = self._interaction
        channel: discord.abc.Messageable
        if isinstance(interaction.channel, discord.abc.Messageable):
            channel = interaction.channel
        else:
            channel = interaction.client.get_partial_messageable(
                interaction.channel_id or 0, guild_id=interaction.guild_id
            )
        return ChannelReplier(
            channel, self._plan, min_bitrate=self._min_bitrate, mention=interaction.user
        )
