"""Telegram adapter: builds the python-telegram-bot (v22) ``Application`` and runs it.

What each update does is :mod:`bot.chat.telegram.handlers`; the Bot API's limits,
refusals and retries are :mod:`bot.chat.telegram.bot_api`; answering in a chat is
:mod:`bot.chat.telegram.replier`; fetching a song is :mod:`bot.chat.telegram.downloads`.

At start-up an unreachable Telegram is retried with backoff for a bounded time
(``bot.chat.conversation.adapter.connect_with_retries``); a rejected token is not.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import AIORateLimiter, Application

from bot.chat.conversation.adapter import ChatAdapter, StartError, connect_with_retries
from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.types import ByteStream, UploadPlan
from bot.chat.telegram.bot_api import TelegramStartError, is_network_error, upload_plan
from bot.chat.telegram.downloads import stream_file
from bot.chat.telegram.handlers import COMMANDS, TelegramHandlers, carries_song
from bot.chat.telegram.intake_gate import IntakeGate
from bot.chat.telegram.replier import TelegramReplier
from bot.settings import TelegramSettings, secret_value

if TYPE_CHECKING:
    from storage.records import ChatRef

__all__ = ["TelegramAdapter", "TelegramReplier", "TelegramStartError", "carries_song"]

logger = logging.getLogger(__name__)

CONCURRENT_UPDATES = 256  # PTB's own number for ``concurrent_updates(True)``


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
        TelegramHandlers(
            self.application,
            settings,
            flow,
            spawn=self.spawn,
            download_again=self.download_again,
        ).register()

    @property
    def upload_plan(self) -> UploadPlan:
        return upload_plan(local_mode=self._settings.local_mode)

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
                self._connect, platform="Telegram", is_transient=is_network_error
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

    def download_again(self, file_ref: str) -> ByteStream:
        """A song's download from its ``file_id`` (the bot's own id for the file, valid
        after a restart too)."""

        def stream() -> AsyncIterator[bytes]:
            return stream_file(
                self.application,
                file_ref,
                local_mode=self._settings.local_mode,
                max_download_bytes=self.upload_plan.max_download_bytes,
            )

        return stream
