"""The bot's answers to Telegram updates, routed to the chat flow.

Private chats: any audio, voice, video, video note, or document whose type is audio or
video starts a job, and so does a text that is a link (``bot.links.classify``) or
``/karaoke <link>``. Groups: only ``/karaoke`` in reply to a song, or a song that
mentions the bot; everything else in a group is ignored silently (never spam a group).
In either, a reply to one of the bot's results (or its question for the words) with
text or an ``.lrc``/``.txt`` file is lyrics for that song's karaoke video, and
``/video`` asks for one (``bot.chat.telegram.lyrics_replies``).

Handlers never block: a song runs in a task of its own (the adapter's ``spawn``) while
the bot keeps answering others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from telegram import BotCommand, Message, Update
from telegram.constants import ChatType
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.chat.conversation import messages
from bot.chat.conversation.controls import PREFIX as CONTROL_PREFIX
from bot.chat.conversation.controls import BadControlError, ControlState
from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.link_source import link_upload
from bot.chat.conversation.types import ByteStream, ChatUser, Conversation
from bot.chat.telegram.bot_api import retry_network, upload_plan
from bot.chat.telegram.downloads import song_upload
from bot.chat.telegram.lyrics_replies import LYRICS_REPLY, LyricsTooBigError, lyrics_of
from bot.chat.telegram.replier import TelegramReplier, control_data
from bot.links.classify import link_in
from bot.links.errors import LinkError
from bot.settings import TelegramSettings
from separation.audio.encode import StemMode

if TYPE_CHECKING:
    from bot.chat.telegram.bot_api import TelegramApplication

logger = logging.getLogger(__name__)

SONG_FILTER = (
    filters.AUDIO | filters.VOICE | filters.VIDEO | filters.VIDEO_NOTE
    | filters.Document.AUDIO | filters.Document.VIDEO
)  # fmt: skip

COMMANDS = [BotCommand(command, description) for command, description in messages.TELEGRAM_COMMANDS]


def carries_song(update: Update) -> bool:
    """Whether ``update`` may start a song: a song, or a message replying to one
    (``/karaoke`` in reply); :class:`IntakeGate` holds its confirmation until handled."""
    message = update.effective_message
    if message is None:
        return False
    replied = message.reply_to_message
    return bool(
        SONG_FILTER.check_update(update)
        or "://" in (message.text or "")  # a link, perhaps: held until handled too
        or (replied is not None and SONG_FILTER.check_update(Update(0, message=replied)))
    )


class TelegramHandlers:
    """Every handler the adapter's ``Application`` runs, and what they share: the flow,
    the settings, and the users who announced a song with ``/karaoke`` or ``/stems``."""

    def __init__(
        self,
        application: TelegramApplication,
        settings: TelegramSettings,
        flow: ChatFlow,
        *,
        spawn: Callable[[Coroutine[Any, Any, Any]], object],
        download_again: Callable[[str], ByteStream],
    ) -> None:
        self.application = application
        self._settings = settings
        self._flow = flow
        self._spawn = spawn
        self._download_again = download_again
        self._awaiting_song: dict[int, StemMode] = {}
        """user id -> stem mode, after /karaoke or /stems without a song."""

    def register(self) -> None:
        """Add every handler (and the error handler) to the application."""
        app = self.application
        # Edits are ignored before anything else (and cost no rate): PTB's message and
        # command handlers take edited messages too, and an edited caption of an old song
        # started a whole new job (issue 20). A changed song is sent again.
        app.add_handler(MessageHandler(filters.UpdateType.EDITED, self._edited), group=-2)
        # Group -1 runs before every other handler: flooding users are stopped here.
        app.add_handler(TypeHandler(Update, self._rate_gate), group=-1)
        app.add_handler(CommandHandler(["start", "help"], self._help))
        app.add_handler(CommandHandler("karaoke", self._karaoke))
        app.add_handler(CommandHandler("stems", self._stems))
        app.add_handler(CommandHandler("quota", self._quota))
        app.add_handler(CommandHandler("status", self._status))
        app.add_handler(CommandHandler("cancel", self._cancel))
        app.add_handler(CommandHandler(["grant", "ban", "unban", "stats"], self._admin))
        app.add_handler(CommandHandler(["key", "tempo", "guide"], self._control_command))
        app.add_handler(CommandHandler("video", self._video))
        app.add_handler(CallbackQueryHandler(self._control_pressed, pattern=f"^{CONTROL_PREFIX}:"))
        app.add_handler(CallbackQueryHandler(self._unknown_button))
        app.add_handler(MessageHandler(LYRICS_REPLY, self._lyrics))
        app.add_handler(MessageHandler(filters.ChatType.PRIVATE & SONG_FILTER, self._song))
        app.add_handler(
            MessageHandler(
                filters.ChatType.GROUPS
                & SONG_FILTER
                & (filters.Entity("mention") | filters.CaptionEntity("mention")),
                self._group_mention,
            )
        )
        app.add_handler(
            MessageHandler(filters.ChatType.PRIVATE & filters.Document.ALL, self._not_a_song)
        )
        app.add_handler(
            MessageHandler(
                filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, self._chatter
            )
        )
        app.add_error_handler(self._on_error)

    def _user(self, update: Update) -> ChatUser:
        user = update.effective_user
        assert user is not None
        return ChatUser(
            "telegram",
            str(user.id),
            user.full_name or "",
            is_admin=user.id in self._settings.admin_ids,
        )

    def _replier(self, message: Message) -> TelegramReplier:
        plan = upload_plan(local_mode=self._settings.local_mode)
        return TelegramReplier(self.application, message.chat_id, message.message_id, plan)

    async def _start_song(self, update: Update, song_message: Message, stems: StemMode) -> None:
        """Record the song as accepted (before this handler returns: see ``IntakeGate``),
        then run it in its own task so the handler returns at once."""
        reply_to = update.effective_message or song_message
        upload = song_upload(song_message, self._download_again)
        self._spawn(
            await self._flow.accept_song(
                self._user(update),
                _conversation(reply_to),
                self._replier(reply_to),
                upload,
                stems=stems,
            )
        )

    async def _start_link(self, update: Update, message: Message, stems: StemMode) -> bool:
        """The link in ``message``'s text as a song, like :meth:`_start_song`; False when
        the text holds none (a bad link is answered and counts as handled)."""
        try:
            link = link_in(message.text or "")
        except LinkError as error:
            await self._reply(update, messages.link_refused(error.kind, error.site))
            return True
        if link is None:
            return False
        self._spawn(
            await self._flow.accept_song(
                self._user(update),
                _conversation(message),
                self._replier(message),
                link_upload(link),
                stems=stems,
            )
        )
        return True

    # -- handlers -----------------------------------------------------------------------
    async def _rate_gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Stop a user's update when they exceed the request rate (one notice, then silence)."""
        if update.effective_user is None:
            return
        decision = self._flow.admit(self._user(update))
        if decision.allowed:
            return
        if update.callback_query is not None:  # the client's spinner stops either way
            await retry_network(update.callback_query.answer, what="answerCallbackQuery")
        message = update.effective_message
        if decision.notify and message is not None and message.chat.type == ChatType.PRIVATE:
            # Quoted: the user must see which of their messages (a song?) was dropped.
            await retry_network(
                lambda: message.reply_text(
                    decision.notice(), do_quote=True, allow_sending_without_reply=True
                ),
                what="reply",
            )
        raise ApplicationHandlerStop

    async def _song(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A song in a private chat."""
        message = update.effective_message
        assert message is not None and update.effective_user is not None
        stems = self._awaiting_song.pop(update.effective_user.id, "two")
        await self._start_song(update, message, stems)

    async def _group_mention(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A song in a group that mentions the bot."""
        message = update.effective_message
        assert message is not None
        username = f"@{self.application.bot.username}".lower()
        mentioned = any(
            text.lower() == username
            for text in message.parse_caption_entities(["mention"]).values()
        )
        mentioned = mentioned or any(
            text.lower() == username for text in message.parse_entities(["mention"]).values()
        )
        if mentioned:
            await self._start_song(update, message, "two")

    async def _karaoke(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/karaoke: in reply to a song, or announce one."""
        await self._song_command(update, "two")

    async def _stems(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/stems: like /karaoke with four stems."""
        await self._song_command(update, "four")

    async def _song_command(self, update: Update, stems: StemMode) -> None:
        message = update.effective_message
        assert message is not None and update.effective_user is not None
        replied = message.reply_to_message
        if replied is not None and SONG_FILTER.check_update(
            Update(update.update_id, message=replied)
        ):
            await self._start_song(update, replied, stems)
            return
        if await self._start_link(update, message, stems):  # /karaoke <link>
            return
        if message.chat.type != ChatType.PRIVATE:
            return  # in groups only a reply to a song counts; stay quiet otherwise
        self._awaiting_song[update.effective_user.id] = stems
        await message.reply_text(messages.SEND_THE_SONG_NOW)

    async def _control_pressed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A karaoke-control button: acknowledged at once (the client stops its spinner),
        then the re-render runs in its own task."""
        query = update.callback_query
        assert query is not None and query.data is not None
        await retry_network(query.answer, what="answerCallbackQuery")
        message = query.message
        if not isinstance(message, Message):  # too old for Telegram to include it
            return
        self._spawn(
            self._flow.rerender.press(self._user(update), self._replier(message), query.data)
        )

    async def _unknown_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button whose data is not ours: answered, so the client stops its spinner."""
        query = update.callback_query
        assert query is not None
        logger.info("telegram: unknown button data %r answered", (query.data or "")[:64])
        await retry_network(query.answer, what="answerCallbackQuery")

    async def _edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An edited message: ignored, whatever it holds (see :meth:`register`)."""
        logger.debug("telegram: edited message %s ignored", update.update_id)
        raise ApplicationHandlerStop

    async def _control_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/key -2, /tempo 0.9, /guide -12|off in reply to one of our instrumentals."""
        message = update.effective_message
        assert message is not None and message.text is not None
        command, _, argument = message.text.partition(" ")
        self._spawn(
            self._flow.rerender.command(
                self._user(update),
                self._replier(message),
                control_data(message.reply_to_message),
                command.lstrip("/").split("@")[0].lower(),
                argument,
            )
        )

    async def _video(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/video: in reply to one of our results, that song as it is there; else the
        user's latest song."""
        message = update.effective_message
        assert message is not None
        data = control_data(message.reply_to_message)
        token, options = None, None
        if data is not None:
            try:
                state = ControlState.decode(data)
            except BadControlError:  # ours once, but no longer understood
                await self._reply(update, messages.CONTROL_BROKEN)
                return
            token, options = state.token, state.options
        self._spawn(
            self._flow.video_command(
                self._user(update), self._replier(message), token, options=options
            )
        )

    async def _lyrics(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Lyrics in reply to one of our results or questions: fetched and handed to the
        flow in a task of their own (a video takes a while)."""
        message = update.effective_message
        assert message is not None
        data = control_data(message.reply_to_message)
        assert data is not None  # the filter checked it
        try:
            state = ControlState.decode(data)
        except BadControlError:
            await self._reply(update, messages.CONTROL_BROKEN)
            return
        self._spawn(self._lyrics_for(update, message, state))

    async def _lyrics_for(self, update: Update, message: Message, state: ControlState) -> None:
        replier = self._replier(message)
        try:
            lyrics = await lyrics_of(
                message, self.application, local_mode=self._settings.local_mode
            )
        except LyricsTooBigError as exc:
            await replier.send_text(exc.user_message)
            return
        await self._flow.lyrics_reply(
            self._user(update), replier, state.token, lyrics, options=state.options
        )

    async def _reply(self, update: Update, text: str) -> None:
        message = update.effective_message
        if message is not None:
            await retry_network(lambda: message.reply_text(text), what="reply")

    async def _help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start and /help."""
        note = "" if self._settings.local_mode else messages.TELEGRAM_FILE_LIMIT_NOTE
        commands = [(f"/{command.command}", command.description) for command in COMMANDS]
        await self._reply(update, self._flow.help(commands=commands, platform_note=note))

    async def _quota(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/quota."""
        await self._reply(update, await self._flow.quota(self._user(update)))

    async def _status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/status."""
        await self._reply(update, await self._flow.status(self._user(update)))

    async def _cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/cancel."""
        await self._reply(update, await self._flow.cancel(self._user(update)))

    async def _admin(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/grant PLATFORM:ID SONGS [MINUTES], /ban PLATFORM:ID, /unban PLATFORM:ID, /stats."""
        user = self._user(update)
        message = update.effective_message
        if not user.is_admin or message is None or message.text is None:
            await self._reply(update, messages.NOT_ADMIN)
            return
        command, *args = message.text.split()
        command = command.lstrip("/").split("@")[0]
        await self._reply(update, await self._flow.admin_command(command, args))

    async def _not_a_song(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A document that is neither audio nor video, in a private chat."""
        await self._reply(update, messages.NOT_A_SONG)

    async def _chatter(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Plain text in a private chat: a link is a song (after ``/karaoke`` or
        ``/stems``, as those asked); anything else is answered with how to send one."""
        message = update.effective_message
        assert message is not None and update.effective_user is not None
        stems = self._awaiting_song.get(update.effective_user.id, "two")
        if await self._start_link(update, message, stems):
            self._awaiting_song.pop(update.effective_user.id, None)
            return
        await self._reply(update, messages.SEND_A_SONG)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        logger.error("telegram handler error: %s", context.error, exc_info=context.error)


def _conversation(message: Message) -> Conversation:
    """Where a song sent in ``message`` (or a command about one) came from."""
    return Conversation(
        "telegram",
        str(message.chat_id),
        message_id=str(message.message_id),
        is_private=message.chat.type == ChatType.PRIVATE,
    )
