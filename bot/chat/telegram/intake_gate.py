"""Telegram forgets an update once it is confirmed: confirm a song only once it is recorded.

python-telegram-bot's ``Updater`` puts the updates one ``getUpdates`` returned in the
application's update queue, then confirms them all with the offset of its next
``getUpdates``, whether or not their handlers ran. A song whose update was confirmed
before the chat flow recorded it as accepted (``bot.chat.conversation.intake``) would be lost
silently by a crash, since Telegram never sends it again. Webhooks are the same: PTB
answers Telegram's request as soon as the update is in the queue.

Both go through the application's update queue, so the hook is there, in PTB's two
public extension points: the queue (``ApplicationBuilder.update_queue``) returns from
``put`` of an update that carries a song only once the update was handled, which an
update processor (``ApplicationBuilder.concurrent_updates``) reports. The song handler
records the song before it returns, so the next ``getUpdates`` (or the webhook's answer)
waits for the record. Other updates (commands, button presses) are not held up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import SimpleUpdateProcessor

logger = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 30.0
"""How long a song's update may hold up the next ones: a handler stuck on an unreachable
database must not stop the bot from receiving (the song is then unprotected)."""


class IntakeGate:
    """Holds each song-bearing update's confirmation until its handlers returned.

    Build the application with :meth:`update_queue` and :meth:`update_processor`.
    """

    def __init__(self, carries_song: Callable[[Update], bool]) -> None:
        self._carries_song = carries_song
        self._handled: dict[int, asyncio.Event] = {}
        """Update id -> set when its handlers returned, for song updates in the queue."""

    def update_queue(self) -> asyncio.Queue[object]:
        return _GatedQueue(self)

    def update_processor(self, max_concurrent_updates: int) -> SimpleUpdateProcessor:
        return _ReportingProcessor(self, max_concurrent_updates)

    def _expect(self, update: object) -> asyncio.Event | None:
        if not isinstance(update, Update) or not self._carries_song(update):
            return None
        return self._handled.setdefault(update.update_id, asyncio.Event())

    def _done(self, update: object) -> None:
        if isinstance(update, Update) and (handled := self._handled.get(update.update_id)):
            handled.set()

    async def _wait(self, update_id: int, handled: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(handled.wait(), MAX_WAIT_SECONDS)
        except TimeoutError:
            logger.warning(
                "telegram: update %d was not handled within %.0f s; confirming it anyway",
                update_id,
                MAX_WAIT_SECONDS,
            )
        finally:
            self._handled.pop(update_id, None)


class _GatedQueue(asyncio.Queue[object]):
    """The application's update queue; ``put`` of a song returns once it was handled."""

    def __init__(self, gate: IntakeGate) -> None:
        super().__init__()
        self._gate = gate

    async def put(self, item: object) -> None:
        handled = self._gate._expect(item)
        await super().put(item)
        if handled is not None and isinstance(item, Update):
            await self._gate._wait(item.update_id, handled)


class _ReportingProcessor(SimpleUpdateProcessor):
    """PTB's default concurrent processing, reporting each update's end to the gate."""

    def __init__(self, gate: IntakeGate, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._gate = gate

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        try:
            await coroutine
        finally:
            self._gate._done(update)
