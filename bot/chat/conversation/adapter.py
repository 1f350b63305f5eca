"""What every chat platform adapter is, written once: :class:`ChatAdapter`.

An adapter (``bot.chat.telegram.adapter``, ``bot.chat.discord.adapter``) connects to its platform,
turns what users send into calls on the chat flow, and answers through a
:class:`~bot.chat.conversation.types.Replier`. The parts that do not depend on the platform live
here:
the tasks an adapter starts (songs, event handlers) and waiting for them, the start-up
errors and the start-up retry with backoff, and waiting until the adapter is idle.

Start errors: every adapter raises :class:`StartError` (or a subclass) for a missing or
rejected token and for a platform it could not reach in time; ``karaoke-bot run`` prints
it and exits 2.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from bot.chat.conversation.tasks import TaskTracker

if TYPE_CHECKING:
    from bot.chat.conversation.types import ByteStream, Replier
    from storage.records import ChatRef, Platform

logger = logging.getLogger(__name__)

T = TypeVar("T")

START_RETRY_SECONDS = 300.0
"""How long an adapter keeps trying to reach its platform at start-up before giving up.

A bot that systemd (or Docker) starts before the network is up, or while the platform
has an outage, comes up by itself when it can connect; after this long it gives up with
one line and exit code 2, so a supervisor notices. A rejected token is never retried.
"""
START_RETRY_FIRST_DELAY = 1.0
START_RETRY_MAX_DELAY = 30.0
"""Delays double from the first to this cap: 1, 2, 4, 8, 16, 30, 30... seconds."""


class StartError(RuntimeError):
    """The bot cannot start; the message is one line for the operator.

    Every adapter raises this (or a subclass) for a missing or rejected token and for a
    platform it could not reach in time; ``karaoke-bot run`` prints it and exits 2.
    """


async def connect_with_retries(
    connect: Callable[[], Awaitable[T]],
    *,
    platform: str,
    is_transient: Callable[[BaseException], bool],
    budget_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``connect`` until it succeeds, retrying transient (network) errors with capped
    exponential backoff for at most ``budget_seconds`` (default :data:`START_RETRY_SECONDS`).

    Raises:
        StartError: ``connect`` raised it (say, a rejected token), or the platform was
            still unreachable when the budget ran out.
        Exception: whatever ``connect`` raised that is not transient.
    """
    budget = START_RETRY_SECONDS if budget_seconds is None else budget_seconds
    deadline = clock() + budget
    delay = START_RETRY_FIRST_DELAY
    while True:
        try:
            return await connect()
        except StartError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            left = deadline - clock()
            reason = str(exc) or type(exc).__name__
            if left <= 0:
                raise StartError(
                    f"cannot reach {platform} (still failing after {budget:g} s of retries): "
                    f"{reason}"
                ) from exc
            wait = min(delay, left, START_RETRY_MAX_DELAY)
            logger.warning("%s: cannot connect (%s); retrying in %.0f s", platform, reason, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, START_RETRY_MAX_DELAY)


class ChatAdapter(abc.ABC):
    """One chat platform, as ``bot.process.app`` runs it.

    Lifecycle: :meth:`start` (raises :class:`StartError`), :meth:`stop_receiving` (no new
    songs or commands; running jobs still deliver), :meth:`wait_for_jobs`, :meth:`stop`.
    Subclasses run every song (and anything else that outlives a handler) through
    :meth:`spawn`, so that nothing is lost and stopping can wait for it.
    """

    platform: ClassVar[Platform]
    """``"telegram"`` or ``"discord"``: how users and jobs of this platform are stored."""

    def __init__(self) -> None:
        self._tasks = TaskTracker()

    # -- what each platform implements --------------------------------------------------
    @abc.abstractmethod
    async def start(self) -> None:
        """Connect (checking the token) and start receiving.

        Raises:
            StartError: a missing or rejected token, or the platform unreachable for
                longer than :data:`START_RETRY_SECONDS`.
        """

    @abc.abstractmethod
    async def stop_receiving(self) -> None:
        """Take no new songs or commands; running jobs can still deliver their results."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect completely (after the jobs in progress were delivered)."""

    @abc.abstractmethod
    async def is_connected(self) -> bool:
        """For the readiness probe: the adapter receives from its platform."""

    @abc.abstractmethod
    def replier_for(self, chat: ChatRef, user_id: str | None = None) -> Replier | None:
        """A replier for a job's stored chat reference (to deliver after a restart); None
        when the reference cannot be answered on this platform."""

    def download_again(self, file_ref: str) -> ByteStream | None:
        """A song's download from the reference the platform gave with it (a
        ``SongUpload.file_ref``), to resume a song accepted before a restart; None where
        this platform cannot fetch a file again."""
        return None

    async def _wait_for_incoming(self) -> None:
        """Return once every update the platform library already received has been handled
        (its handler returned). The default lets handlers of events already dispatched
        start, for platforms whose handlers run through :meth:`spawn`."""
        await asyncio.sleep(0)

    # -- written once -------------------------------------------------------------------
    def spawn(
        self, coroutine: Coroutine[Any, Any, T], *, name: str | None = None
    ) -> asyncio.Task[T]:
        """Run ``coroutine`` in a task this adapter keeps until it ends (a song, a handler)."""
        return self._tasks.spawn(coroutine, name=name)

    async def wait_for_jobs(self) -> None:
        """Wait until every task started by this adapter has ended."""
        await self._tasks.drain()

    async def wait_until_idle(self) -> None:
        """Wait until the adapter has nothing left to do: every update its platform library
        already received was handled and every task that started has ended.

        For tests that must show something did *not* happen ("no answer in a group"):
        once this returns, whatever the bot was going to do about what it received has
        been done. Updates still on their way from the platform (not received yet) are
        not covered: a test waits for the platform to have delivered them first.
        """
        while True:
            await self._wait_for_incoming()
            if self._tasks.idle:
                return
            await self._tasks.drain()
