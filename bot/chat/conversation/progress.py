"""One progress message per job, edited in place, never more often than every 3 s.

Telegram and Discord both rate-limit message edits; a job that reports progress ten
times a second must not turn into ten edits a second. Intermediate texts are coalesced
(only the latest is shown when the slot comes). The final text is shown at once: it
replaces whatever was pending, and waiting for the slot made refusals take 3 s and put
"Done!" seconds after the files (issue 11). One more edit per job is within both
platforms' limits. Edits are best effort: a failed progress edit is logged, never
allowed to fail the job whose results are still to be delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

MIN_EDIT_INTERVAL_SECONDS = 3.0


class ProgressMessage:
    """Shows a job's state in one message: first ``send``, then throttled ``edit``s."""

    def __init__(
        self,
        send: Callable[[str], Awaitable[Any]],
        edit: Callable[[Any, str], Awaitable[None]],
        *,
        min_interval: float = MIN_EDIT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._edit = edit
        self._min_interval = min_interval
        self._clock = clock
        self._handle: Any = None
        self._continued = False
        self._shown: str | None = None
        self._pending: str | None = None
        self._last_write = float("-inf")
        self._flush_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def handle(self) -> Any:
        """The message's handle once it was sent (None before)."""
        return self._handle

    def continue_in(self, handle: Any) -> None:
        """Edit a message sent earlier (by the process before a restart) instead of sending
        a new one; if it cannot be edited any more, a new one is sent."""
        if self._handle is None:
            self._handle = handle
            self._continued = True

    async def show(self, text: str) -> None:
        """Show ``text`` now if the slot is free, else when it frees up (latest wins)."""
        if text in (self._shown, self._pending):
            return
        wait = self._wait_time()
        if wait <= 0 and self._flush_task is None:
            await self._write(text)
            return
        self._pending = text
        if self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush_later(wait))

    async def final(self, text: str) -> None:
        """Show ``text`` as the last state now, dropping any pending intermediate state."""
        self.close()
        if text != self._shown:
            await self._write(text)  # after an edit already on its way (the lock)

    def close(self) -> None:
        """Drop any pending edit (the job ended another way)."""
        if self._flush_task is not None:
            self._flush_task.cancel()  # still waiting for its slot: nothing was sent yet
            self._flush_task = None
        self._pending = None

    def _wait_time(self) -> float:
        return self._last_write + self._min_interval - self._clock()

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))
        self._flush_task = None
        text, self._pending = self._pending, None
        if text is not None and text != self._shown:
            await self._write(text)

    async def _edit_or_replace(self, text: str) -> None:
        try:
            await self._edit(self._handle, text)
        except Exception as exc:
            if not self._continued or self._shown is not None:
                raise
            # The earlier message is gone (deleted by the user, say): start a new one.
            logger.info("progress: the earlier message cannot be edited (%s); sending anew", exc)
            self._handle = await self._send(text)
        self._continued = False

    async def _write(self, text: str) -> None:
        async with self._lock:
            self._last_write = self._clock()
            try:
                if self._handle is None:
                    self._handle = await self._send(text)
                else:
                    await self._edit_or_replace(text)
            except Exception as exc:  # progress is best effort; the job goes on
                logger.warning("progress message update failed: %s", exc)
                return
            self._shown = text
