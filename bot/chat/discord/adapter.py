"""Discord adapter: translates discord.py (2.x) events and slash commands into the chat flow.

Songs arrive two ways. ``/karaoke file:<attachment>`` (or ``url:<link>``) works anywhere
the bot's commands are available (``bot.chat.discord.slash``). An audio or video
attachment, or a link, posted in a configured song channel, in a DM, or in a message that
mentions the bot starts a job too, answered by replies to that message.

Songs in song channels need the privileged message-content intent. Without it (turned off
in the settings, or refused by Discord when connecting) the bot keeps working: Discord
still delivers attachments of DMs and of messages that mention the bot, and the slash
commands do not need the intent at all. One warning says so.

Rate limits, 429s and reconnects are discord.py's job. Our own code retries one thing in
a loop: logging in at start-up while Discord cannot be reached (with backoff, for a
bounded time: ``bot.chat.conversation.adapter.START_RETRY_SECONDS``). The one fallback (reconnecting
without the intent) happens at most once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord import app_commands

from bot.chat.conversation import messages
from bot.chat.conversation.adapter import ChatAdapter, StartError, connect_with_retries
from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.link_source import link_upload
from bot.chat.conversation.types import ByteStream, ChatUser, Conversation, LyricsUpload, Replier
from bot.chat.discord.attachments import attachment_stream, song_of, song_upload
from bot.chat.discord.commands import FormatChoice, build_command_tree
from bot.chat.discord.controls import ControlButton, acknowledge_unknown
from bot.chat.discord.lyrics_replies import LyricsReplies
from bot.chat.discord.replies import ChannelReplier, PressReplier, plan_for_guild, reply_replier
from bot.chat.discord.slash import SlashCommands
from bot.chat.discord.sync import sync_if_changed
from bot.links.classify import Link
from bot.links.errors import LinkError
from bot.settings import DiscordSettings, Settings, secret_value
from separation.audio.encode import StemMode
from separation.audio.render_options import RenderOptions

if TYPE_CHECKING:
    from storage.records import ChatRef

logger = logging.getLogger(__name__)

_STOP_TIMEOUT_SECONDS = 10.0
NO_INTENT_WARNING = (
    "discord: running without the message-content intent: songs posted in song channels "
    "are ignored; /karaoke, DMs and songs that mention the bot still work"
)
INTENT_REFUSED_WARNING = (
    "discord: Discord refused the message-content intent (enable it under Bot > Privileged "
    "Gateway Intents in the Developer Portal); reconnecting without it: songs posted in "
    "song channels are ignored, /karaoke, DMs and songs that mention the bot still work"
)

ClientFactory = Callable[[discord.Intents], discord.Client]


class DiscordStartError(StartError):
    """The bot cannot start (missing or rejected token, Discord unreachable)."""


def _is_network_error(error: BaseException) -> bool:
    """No network, DNS failure, or Discord down (5xx); not a refusal (4xx)."""
    if isinstance(error, discord.HTTPException):
        return error.status >= 500
    return isinstance(error, aiohttp.ClientError | OSError | TimeoutError)


def default_client(intents: discord.Intents) -> discord.Client:
    """The production client: discord.py's own HTTP session and gateway connection."""
    # The bot never joins voice: skip discord.py's "PyNaCl/davey is not installed" warnings.
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False
    return discord.Client(intents=intents, allowed_mentions=discord.AllowedMentions.none())


def bot_intents(*, message_content: bool) -> discord.Intents:
    """Servers, their messages and DMs; message content only when asked for (privileged)."""
    intents = discord.Intents.default()
    intents.message_content = message_content
    return intents


class DiscordAdapter(ChatAdapter):
    """Owns the discord.py client and routes its events and commands to the :class:`ChatFlow`.

    Every message event is handled in a task of this adapter's own (see :meth:`spawn`), so
    :meth:`wait_until_idle` covers the messages discord.py has dispatched. Slash commands
    run in discord.py's command-tree tasks: the songs they start are tracked, their
    immediate answers are not.
    """

    platform = "discord"

    def __init__(
        self,
        settings: DiscordSettings,
        flow: ChatFlow,
        *,
        state_dir: Path,
        min_mp3_bitrate: int = 96,
        client_factory: ClientFactory = default_client,
    ) -> None:
        super().__init__()
        token = secret_value(settings.token)
        if not token:
            raise DiscordStartError(
                "Discord is enabled but no token is set: set KARAOKE_DISCORD_TOKEN or discord.token"
            )
        self._token = token
        self._settings = settings
        self._flow = flow
        self._state_dir = state_dir
        self._min_bitrate = min_mp3_bitrate
        self._client_factory = client_factory
        self.client: discord.Client | None = None
        """The connected client (replaced once if Discord refuses the intent)."""
        self.tree: app_commands.CommandTree | None = None
        self._gateway: asyncio.Task[None] | None = None
        self._accepting = True
        self._slash = SlashCommands(
            settings=settings,
            flow=flow,
            min_bitrate=min_mp3_bitrate,
            user_of=self._user,
            start_song=self._start_song,
            spawn=self.spawn,
            accepting=lambda: self._accepting,
            connector=self._connector,
        )
        self._lyrics = LyricsReplies(
            flow,
            admit=flow.admit,
            user_of=self._user,
            replier_for=lambda message: reply_replier(message, min_bitrate=min_mp3_bitrate),
            connector=self._connector,
        )

    @classmethod
    def from_settings(cls, settings: Settings, flow: ChatFlow, **options: Any) -> DiscordAdapter:
        """The adapter as ``karaoke-bot run`` builds it (state kept in the data folder)."""
        return cls(
            settings.discord,
            flow,
            state_dir=settings.general.data_dir / "discord",
            min_mp3_bitrate=settings.output.min_mp3_bitrate,
            **options,
        )

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Log in (checks the token), sync the commands if they changed, connect."""
        wants_content = self._settings.message_content_intent
        if not wants_content:
            logger.warning(NO_INTENT_WARNING)
        self.client = await connect_with_retries(
            lambda: self._login(bot_intents(message_content=wants_content)),
            platform="Discord",
            is_transient=_is_network_error,
        )
        await self._sync_commands()
        self._gateway = asyncio.create_task(self._run_gateway(), name="discord-gateway")

    async def _login(self, intents: discord.Intents) -> discord.Client:
        client = self._client_factory(intents)
        tree = build_command_tree(client, self._slash)
        # discord.Client dispatches events to its on_<event> attributes, which its type
        # does not declare (client.event() would need the handler named on_message).
        client.on_message = self._on_message_event  # type: ignore[attr-defined]
        client.on_ready = self._on_ready  # type: ignore[attr-defined]
        # Karaoke-control buttons of any message this bot sent, before or after a restart.
        client.add_dynamic_items(ControlButton)
        client.karaoke_pressed = self._control_pressed  # type: ignore[attr-defined]
        client.on_interaction = acknowledge_unknown  # type: ignore[attr-defined]
        try:
            await client.login(self._token)
        except discord.LoginFailure as exc:
            await client.close()
            raise DiscordStartError(
                "Discord rejected the bot token (check KARAOKE_DISCORD_TOKEN)"
            ) from exc
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            await client.close()
            if _is_network_error(exc):
                raise  # retried by ``start``; a fresh client each time
            raise DiscordStartError(f"cannot log in to Discord: {exc}") from exc
        self.tree = tree
        return client

    async def _sync_commands(self) -> None:
        assert self.client is not None and self.tree is not None
        application_id = self.client.application_id
        assert application_id is not None  # login fetched the application
        try:
            await sync_if_changed(
                self.tree,
                application_id=application_id,
                guild_id=self._settings.test_guild_id,
                state_dir=self._state_dir,
            )
        except discord.HTTPException as exc:  # songs in channels still work; retried next start
            logger.error(
                "discord: could not sync the slash commands (%s %s); was the bot invited with "
                "the applications.commands scope?",
                exc.status,
                exc.text,
            )

    async def _run_gateway(self) -> None:
        """Receive events until stopped; reconnect once without the intent if it is refused."""
        assert self.client is not None
        try:
            try:
                await self.client.connect(reconnect=True)
            except discord.PrivilegedIntentsRequired:
                if not self.client.intents.message_content:
                    raise
                logger.warning(INTENT_REFUSED_WARNING)
                refused = self.client
                self.client = await self._login(bot_intents(message_content=False))
                await refused.close()
                await self.client.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # discord.py already retried what can be retried
            logger.error("discord: the gateway connection ended: %s", exc)

    async def _on_ready(self) -> None:
        assert self.client is not None and self.client.user is not None
        logger.info(
            "discord: connected as %s (%d servers)", self.client.user, len(self.client.guilds)
        )

    async def is_connected(self) -> bool:
        """For the readiness probe: the gateway session is up."""
        client = self.client
        return client is not None and client.is_ready() and not client.is_closed()

    async def stop_receiving(self) -> None:
        """Take no new songs or commands; running jobs can still deliver their results."""
        self._accepting = False

    async def stop(self) -> None:
        """Disconnect completely (after the jobs in progress were delivered)."""
        self._accepting = False
        if self.client is not None:
            await self.client.close()
        if self._gateway is not None:
            try:
                await asyncio.wait_for(self._gateway, _STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                logger.warning("discord: the gateway did not close in time")

    def replier_for(self, chat: ChatRef, user_id: str | None = None) -> Replier | None:
        """A replier for a job's stored chat reference (to deliver after a restart).

        Replies to the stored message (the user's song, or the command's response) and
        mentions ``user_id`` when given.
        """
        if self.client is None or chat.channel_id is None:
            return None
        guild_id = int(chat.guild_id) if chat.guild_id else None
        channel = self.client.get_partial_messageable(int(chat.channel_id), guild_id=guild_id)
        reply_to = channel.get_partial_message(int(chat.message_id)) if chat.message_id else None
        guild = self.client.get_guild(guild_id) if guild_id is not None else None
        return ChannelReplier(
            channel,
            plan_for_guild(guild),
            min_bitrate=self._min_bitrate,
            reply_to=reply_to,
            mention=discord.Object(int(user_id)) if user_id else None,
        )

    def download_again(self, file_ref: str) -> ByteStream | None:
        """A song's download from its attachment URL (which Discord lets expire within a
        day or so: a failed download is reported to the user as a lost song)."""
        if self.client is None:
            return None
        return attachment_stream(file_ref, self.client.http.connector)

    # -- translation ----------------------------------------------------------------------
    def _user(self, author: discord.User | discord.Member) -> ChatUser:
        roles = getattr(author, "roles", [])
        is_admin = author.id in self._settings.admin_ids or any(
            role.id in self._settings.admin_role_ids for role in roles
        )
        return ChatUser("discord", str(author.id), author.display_name, is_admin=is_admin)

    async def _start_song(
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
    ) -> asyncio.Task[Any]:
        """Record the song as accepted, then run it in its own task so the event handler
        returns at once.

        The gateway never sends an event again, so the record is best effort: it is
        written as early as the event's handling allows, and a crash before that still
        loses the song (``bot.chat.conversation.intake``).
        """
        return self.spawn(
            await self._flow.accept_song(
                user,
                conversation,
                replier,
                link_upload(song, lyrics)
                if isinstance(song, Link)
                else song_upload(song, self._connector(), lyrics),
                stems=stems,
                output_format=output_format,
                controls=controls,
            )
        )

    def _connector(self) -> aiohttp.BaseConnector:
        """discord.py's own connector: downloads share its connection pool and proxy."""
        assert self.client is not None
        return self.client.http.connector

    # -- ordinary messages --------------------------------------------------------------
    def _in_song_channel(self, channel: Any) -> bool:
        listed = self._settings.song_channel_ids
        return channel.id in listed or getattr(channel, "parent_id", None) in listed

    async def _on_message_event(self, message: discord.Message) -> None:
        """discord.py's ``on_message``: handled in a task of this adapter's (its errors are
        logged there), so that waiting for the adapter to be idle includes it."""
        self.spawn(self._on_message(message), name="discord: on_message")

    async def _on_message(self, message: discord.Message) -> None:
        """A song in a song channel, a DM, or a message that mentions the bot; lyrics in
        reply to one of the bot's results (``bot.chat.discord.lyrics_replies``)."""
        me = self.client.user if self.client is not None else None
        if not self._accepting or me is None or message.author.bot:
            return
        if await self._lyrics.take(message, me):
            return  # lyrics in reply to one of our results, wherever it was posted
        private = message.guild is None
        addressed = private or any(user.id == me.id for user in message.mentions)
        song = song_of(message, addressed=addressed)
        if not addressed and (song is None or not self._in_song_channel(message.channel)):
            return  # never answer unsolicited messages in a server
        user = self._user(message.author)
        decision = self._flow.admit(user)
        if not decision.allowed:
            if decision.notify:
                await message.reply(decision.notice(), mention_author=False)
            return
        if song is None or isinstance(song, LinkError):
            hint = messages.NOT_A_SONG if message.attachments else messages.SEND_A_SONG
            if song is not None:
                hint = messages.link_refused(song.kind, song.site)
            await message.reply(hint, mention_author=False)
            return
        conversation = Conversation(
            "discord",
            str(message.channel.id),
            guild_id=str(message.guild.id) if message.guild else None,
            channel_id=str(message.channel.id),
            message_id=str(message.id),
            is_private=private,
        )
        await self._start_song(
            user, conversation, reply_replier(message, min_bitrate=self._min_bitrate), song
        )

    def _control_pressed(self, interaction: discord.Interaction, data: str) -> None:
        """A karaoke-control button (already acknowledged): re-rendered in a task, the
        files posted in reply to the result, mentioning whoever pressed; a refusal only
        the presser sees (``PressReplier``)."""
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            return
        replier = PressReplier(
            interaction, channel, plan_for_guild(interaction.guild), min_bitrate=self._min_bitrate
        )
        self.spawn(
            self._flow.rerender.press(self._user(interaction.user), replier, data),
            name="discord: control",
        )
