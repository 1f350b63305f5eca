"""The pool's background tasks, kept in one place so none is lost or left running.

An ``asyncio`` task nobody references may be garbage-collected mid-run, and one nobody
cancels outlives the pool. Every task the pool starts on its own behalf (workers, the
cache sweeper, evictions) goes into a :class:`TaskSet`, which shutdown cancels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class TaskSet:
    """Tasks started with :meth:`spawn`; a finished task leaves the set by itself."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel(self) -> list[asyncio.Task[Any]]:
        """Cancel every task still running; returns them, to be awaited."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return tasks


async def cancel_all(*groups: TaskSet) -> None:
    """Cancel the tasks of ``groups`` and wait until they all ended (errors ignored)."""
    tasks = [task for group in groups for task in group.cancel()]
    await asyncio.gather(*tasks, return_exceptions=True)
