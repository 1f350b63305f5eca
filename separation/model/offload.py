"""Blocking work (inference, ffmpeg, hashing, file I/O) run off the event loop.

A thread cannot be interrupted. If the coroutine waiting for one is cancelled (the user
cancelled, the job timed out) and simply moved on, its ``finally`` blocks would delete
the job folder while the thread still writes into it. So cancellation waits for the
thread to finish, then propagates.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


async def run_blocking(
    executor: Executor | None, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """``function(*args, **kwargs)`` in ``executor`` (None: the loop's default one)."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(executor, functools.partial(function, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        if not future.cancelled():
            future.exception()  # consumed: the caller is leaving, not interested
        raise
