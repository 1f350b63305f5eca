"""Telegram adapter: translates python-telegram-bot (v22) updates into the chat flow.

Private chats: any audio, voice, video, video note, or document whose type is audio or
video starts a job. Groups: only ``/karaoke`` in reply to a song, or a song that
mentions the bot; everything else in a group is ignored silently (never spam a group).

Handlers never block: the application runs updates concurrently and a job lives in the
pool while the bot keeps answering others. Telegram's rate limits are handled by
``AIORateLimiter`` (which retries ``RetryAfter``), and idempotent calls are retried on
network errors a bounded number of times. At start-up an unreachable Telegram is retried
with backoff for a bounded time (``bot.chat.conversation.adapter.connect_with_retries``); a
rejected token
is not. The Bot API's own refusals are translated into the flow's typed errors: a file
over the 20 MB download limit, a result over the upload limit (413).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiofiles
import httpx
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import (
    BadRequest,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.chat.conversation import messages
from bot.chat.conversation.adapter import ChatAdapter, StartError, connect_with_retries
from bot.chat.conversation.controls import PREFIX as CONTROL_PREFIX
from bot.chat.conversation.controls import Button
from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.types import (
    ByteStream,
    ChatUser,
    Conversation,
    OutgoingFile,
    SongUpload,
    UploadPlan,
)
from bot.chat.telegram.intake_gate import IntakeGate
from bot.settings import TelegramSettings, secret_value
from separation.audio.encode import StemMode
from separation.errors import OutputTooLargeError
from storage.errors import UploadTooLargeError

if TYPE_CHECKING:
    from telegram.ext import ExtBot, JobQueue

    from storage.records import ChatRef

    TelegramApplication = Application[
        ExtBot[int],  # the rate limiter's type: AIORateLimiter is a BaseRateLimiter[int]
        ContextTypes.DEFAULT_TYPE,
        dict[Any, Any],
        dict[Any, Any],
        dict[Any, Any],
        JobQueue[ContextTypes.DEFAULT_TYPE],
    ]
    """What ``Application.builder().token(...).build()`` makes: PTB's default types."""

logger = logging.getLogger(__name__)

# Bot API limits (https://core.telegram.org/bots/api#sending-files): decimal megabytes.
STANDARD_DOWNLOAD_LIMIT = 20_000_000
STANDARD_UPLOAD_LIMIT = 50_000_000
LOCAL_UPLOAD_LIMIT = 2_000_000_000
_NETWORK_ATTEMPTS = 3
_DOWNLOAD_CHUNK = 1 << 16

SONG_FILTER = (
    filters.AUDIO | filters.VOICE | filters.VIDEO | filters.VIDEO_NOTE
    | filters.Document.AUDIO | filters.Document.VIDEO
)  # fmt: skip

COMMANDS = [BotCommand(command, description) for command, description in messages.TELEGRAM_COMMANDS]
CONCURRENT_UPDATES = 256  # PTB's own number for ``concurrent_updates(True)``

T = TypeVar("T")


def carries_song(update: Update) -> bool:
    """Whether ``update`` may start a song: a song, or a message replying to one
    (``/karaoke`` in reply); :class:`IntakeGate` holds its confirmation until handled."""
    message = update.effective_message
    if message is None:
        return False
    replied = message.reply_to_message
    return bool(
        SONG_FILTER.check_update(update)
        or (replied is not None and SONG_FILTER.check_update(Update(0, message=replied)))
    )


class TelegramStartError(StartError):
    """The bot cannot start (missing or rejected token, Telegram unreachable)."""


class TelegramUploadTooLargeError(OutputTooLargeError):
    """Telegram refused a result file as too big (413); retrying cannot help."""


def _is_too_big(error: TelegramError) -> bool:
    """413 Request Entity Too Large (PTB raises it as a NetworkError)."""
    return "request entity too large" in error.message.lower() or "(413)" in error.message


def _is_network_error(error: BaseException) -> bool:
    """No network, DNS failure, Telegram down or timing out; not an API refusal."""
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest)


async def retry_network(call: Callable[[], Awaitable[T]], *, what: str) -> T:
    """Retry an idempotent Bot API call on network errors (not on other API errors)."""
    for attempt in range(1, _NETWORK_ATTEMPTS + 1):
        try:
            return await call()
        except RetryAfter as exc:  # AIORateLimiter already retried; wait once more
            if attempt == _NETWORK_ATTEMPTS:
                raise
            await asyncio.sleep(
                float(
                    exc.retry_after
                    if isinstance(exc.retry_after, int | float)
                    else exc.retry_after.total_seconds()
                )
            )
        except (TimedOut, NetworkError) as exc:
            if isinstance(exc, BadRequest) or _is_too_big(exc) or attempt == _NETWORK_ATTEMPTS:
                raise
            logger.info("%s: network error (%s), retry %d", what, exc, attempt)
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


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
        return await retry_network(
            lambda: self.application.bot.send_message(
                self.chat_id,
                text,
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

            async def send(file: OutgoingFile = file, content: bytes = content) -> Message:
                return await self.application.bot.send_audio(
                    self.chat_id,
                    audio=content,
                    filename=file.filename,
                    title=file.title,
                    performer=file.performer,
                    duration=round(file.duration_seconds or 0) or None,
                    reply_markup=_keyboard(file.controls),
                    reply_to_message_id=self.reply_to,
                    allow_sending_without_reply=True,
                    read_timeout=120,
                    write_timeout=120,
                )

            # Only a connection failure before anything was sent is retried: a timed-out
            # upload may have arrived, and a duplicate file is worse than an error.
            for attempt in range(1, _NETWORK_ATTEMPTS + 1):
                try:
                    await send()
                    break
                except TimedOut:
                    raise
                except NetworkError as exc:
                    if _is_too_big(exc):  # the plan's limit is more than this server takes
                        raise TelegramUploadTooLargeError(
                            duration_seconds=file.duration_seconds or 0.0,
                            budget_bytes=self.plan.max_file_bytes,
                            min_bitrate=0,
                        ) from exc
                    if isinstance(exc, BadRequest) or attempt == _NETWORK_ATTEMPTS:
                        raise
                    await asyncio.sleep(0.5 * attempt)


def _keyboard(rows: list[list[Button]] | None) -> InlineKeyboardMarkup | None:
    """Karaoke controls as an inline keyboard under the file (callback data: the button's)."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(button.label, callback_data=button.data) for button in row]
         for row in rows]
    )  # fmt: skip


def _control_data(message: Message | None) -> str | None:
    """The data of the first control button under ``message`` (a result we sent), if any."""
    markup = message.reply_markup if message is not None else None
    for row in markup.inline_keyboard if markup is not None else ():
        for button in row:
            if isinstance(button.callback_data, str) and button.callback_data.startswith(
                f"{CONTROL_PREFIX}:"
            ):
                return button.callback_data
    return None


class TelegramAdapter(ChatAdapter):
    """Builds the PTB ``Application`` and routes updates to the :class:`ChatFlow`."""

    platform = "telegram"

    def __init__(self, settings: TelegramSettings, flow: ChatFlow) -> None:
        super().__init__()
        token = secret_value(settings.token)
        if not token:
            raise TelegramStartError(
                "Telegram is enabled but no token is set: set "
                "KARAOKE_TELEGRAM_TOKEN or telegram.token"
            )
        self._settings = settings
        self._flow = flow
        self._awaiting_song: dict[int, StemMode] = {}
        """user id -> stem mode, after /karaoke or /stems without a song."""
        # A song's update is confirmed to Telegram only once the flow recorded it.
        gate = IntakeGate(carries_song)
        builder = (
            Application.builder()
            .token(token)
            .update_queue(gate.update_queue())
            .concurrent_updates(gate.update_processor(CONCURRENT_UPDATES))
            .rate_limiter(AIORateLimiter(max_retries=3))
        )
        if settings.base_url:
            builder = builder.base_url(settings.base_url)
        if settings.base_file_url:
            builder = builder.base_file_url(settings.base_file_url)
        if settings.local_mode:
            builder = builder.local_mode(True)
        self.application = builder.build()
        self._register_handlers()

    @property
    def upload_plan(self) -> UploadPlan:
        if self._settings.local_mode:
            return UploadPlan(
                max_file_bytes=LOCAL_UPLOAD_LIMIT, max_download_bytes=LOCAL_UPLOAD_LIMIT
            )
        return UploadPlan(
            max_file_bytes=STANDARD_UPLOAD_LIMIT, max_download_bytes=STANDARD_DOWNLOAD_LIMIT
        )

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Connect (checks the token), set the command menu and start receiving updates.


        Network errors are retried with backoff for
        ``bot.chat.conversation.adapter.START_RETRY_SECONDS``
        (a bot started before the network is up comes up when it is); a rejected token
        is not. Either way a failure is one :class:`TelegramStartError` line.
        """
        try:
            await connect_with_retries(
                self._connect, platform="Telegram", is_transient=_is_network_error
            )
            await self._receive()
        except StartError:
            raise
        except TelegramError as exc:
            raise TelegramStartError(f"cannot start Telegram: {exc}") from exc
        logger.info(
            "telegram: connected as @%s (%s)", self.application.bot.username, self._settings.mode
        )

    async def _connect(self) -> None:
        try:
            await self.application.initialize()
        except InvalidToken as exc:
            raise TelegramStartError(
                "Telegram rejected the bot token (check KARAOKE_TELEGRAM_TOKEN)"
            ) from exc
        await self.application.bot.set_my_commands(COMMANDS)

    async def _receive(self) -> None:
        await self.application.start()
        updater = self.application.updater
        assert updater is not None
        if self._settings.mode == "webhook":
            await updater.start_webhook(
                listen=self._settings.webhook_listen,
                port=self._settings.webhook_port,
                url_path="telegram",
                webhook_url=self._settings.webhook_url,
                secret_token=secret_value(self._settings.webhook_secret),
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await updater.start_polling(
                poll_interval=0.0, timeout=10, allowed_updates=Update.ALL_TYPES
            )

    async def is_connected(self) -> bool:
        """For the readiness probe: updates are being received."""
        updater = self.application.updater
        return self.application.running and updater is not None and updater.running

    async def stop_receiving(self) -> None:
        """Stop taking updates; the bot can still send (results of running jobs)."""
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()

    async def stop(self) -> None:
        """Disconnect completely (after the jobs in progress were delivered)."""
        await self.stop_receiving()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    def replier_for(self, chat: ChatRef, user_id: str | None = None) -> TelegramReplier | None:
        """A replier for a job's stored chat reference (to deliver after a restart).

        ``user_id`` is not needed: Telegram replies to the user's own message.
        """
        if chat.chat_id is None:
            return None
        reply_to = int(chat.message_id) if chat.message_id else None
        return TelegramReplier(self.application, int(chat.chat_id), reply_to, self.upload_plan)

    async def _wait_for_incoming(self) -> None:
        """Every update PTB has put in its queue (polling or webhook) was handled: PTB marks
        an update done once all its handlers returned."""
        await self.application.update_queue.join()

    # -- routing ------------------------------------------------------------------------
    def _register_handlers(self) -> None:
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
        app.add_handler(CallbackQueryHandler(self._control_pressed, pattern=f"^{CONTROL_PREFIX}:"))
        app.add_handler(CallbackQueryHandler(self._unknown_button))
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
        return TelegramReplier(
            self.application, message.chat_id, message.message_id, self.upload_plan
        )

    async def _start_song(self, update: Update, song_message: Message, stems: StemMode) -> None:
        """Record the song as accepted (before this handler returns: see ``IntakeGate``),
        then run it in its own task so the handler returns at once."""
        reply_to = update.effective_message or song_message
        upload = self._upload_from(song_message)
        conversation = Conversation(
            "telegram",
            str(reply_to.chat_id),
            message_id=str(reply_to.message_id),
            is_private=reply_to.chat.type == ChatType.PRIVATE,
        )
        self.spawn(
            await self._flow.accept_song(
                self._user(update),
                conversation,
                self._replier(reply_to),
                upload,
                stems=stems,
            )
        )

    def _upload_from(self, message: Message) -> SongUpload:
        media = (
            message.audio
            or message.voice
            or message.video
            or message.video_note
            or message.document
        )
        assert media is not None
        file_name = getattr(media, "file_name", None)
        title = getattr(media, "title", None)
        performer = getattr(media, "performer", None)
        voice = message.voice is not None or message.video_note is not None

        return SongUpload(
            stream=self.download_again(media.file_id),
            file_name=file_name,
            declared_size=media.file_size,
            title_hint=title,
            performer_hint=performer,
            fallback_title=messages.VOICE_MESSAGE if voice else None,
            file_ref=media.file_id,
            file_unique_id=media.file_unique_id,
        )

    def download_again(self, file_ref: str) -> ByteStream:
        """A song's download from its ``file_id`` (the bot's own id for the file, valid
        after a restart too)."""

        def stream() -> AsyncIterator[bytes]:
            return self._download(file_ref)

        return stream

    async def _download(self, file_id: str) -> AsyncIterator[bytes]:
        """Stream a file from the Bot API (or the local server's disk in local mode).

        Raises:
            UploadTooLargeError: the Bot API will not hand out a file this big (20 MB).
        """
        try:
            telegram_file = await retry_network(
                lambda: self.application.bot.get_file(file_id), what="getFile"
            )
        except BadRequest as exc:
            if "file is too big" not in exc.message.lower():
                raise
            raise UploadTooLargeError(max_bytes=self.upload_plan.max_download_bytes) from exc
        path = telegram_file.file_path or ""
        if self._settings.local_mode and not path.startswith(("http://", "https://")):
            async with aiofiles.open(Path(path), "rb") as handle:
                while chunk := await handle.read(_DOWNLOAD_CHUNK):
                    yield chunk
            return
        # httpx is PTB's own HTTP client; its request log lines (which would contain the
        # token in the URL) are silenced in logging_setup.
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client,
            client.stream("GET", path) as response,
        ):
            response.raise_for_status()
            async for chunk in response.aiter_bytes(_DOWNLOAD_CHUNK):
                yield chunk

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
        self.spawn(
            self._flow.rerender.press(self._user(update), self._replier(message), query.data)
        )

    async def _unknown_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button whose data is not ours: answered, so the client stops its spinner."""
        query = update.callback_query
        assert query is not None
        logger.info("telegram: unknown button data %r answered", (query.data or "")[:64])
        await retry_network(query.answer, what="answerCallbackQuery")

    async def _edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An edited message: ignored, whatever it holds (see ``_register_handlers``)."""
        logger.debug("telegram: edited message %s ignored", update.update_id)
        raise ApplicationHandlerStop

    async def _control_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/key -2, /tempo 0.9, /guide -12|off in reply to one of our instrumentals."""
        message = update.effective_message
        assert message is not None and message.text is not None
        command, _, argument = message.text.partition(" ")
        self.spawn(
            self._flow.rerender.command(
                self._user(update),
                self._replier(message),
                _control_data(message.reply_to_message),
                command.lstrip("/").split("@")[0].lower(),
                argument,
            )
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
        """Plain text in a private chat."""
        await self._reply(update, messages.SEND_A_SONG)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        logger.error("telegram handler error: %s", context.error, exc_info=context.error)
