"""Background tasks that must neither be lost nor outlive their owner.

asyncio keeps only a weak reference to a task, so a task nobody holds can vanish
mid-flight; and a bot that stops must know what is still running. :class:`TaskTracker`
holds its tasks until they end, can wait for all of them (including tasks they start in
turn), cancel them, and say whether any is left. The adapters and ``bot.process.app`` each own one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class TaskTracker:
    """A set of running tasks: spawn, drain, cancel, idle."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(
        self, coroutine: Coroutine[Any, Any, T], *, name: str | None = None
    ) -> asyncio.Task[T]:
        """Run ``coroutine`` in a task of its own, held here until it ends."""
        return self.track(asyncio.create_task(coroutine, name=name))

    def track(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        """Hold ``task`` (created elsewhere) until it ends."""
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # Nobody awaits these tasks: without this line the error would only surface
            # as asyncio's "exception was never retrieved", if at all.
            logger.error("task %s failed: %s", task.get_name(), error, exc_info=error)

    @property
    def idle(self) -> bool:
        """No task is running."""
        return not self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until every task has ended, also those started while waiting.

        A task's exception is logged when it ends, not raised here. Cancelling the wait
        does not cancel the tasks.
        """
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def cancel_all(self) -> None:
        """Cancel every task and wait until they have ended."""
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
