"""Single-flight: one computation per cache key, however many callers want it.

Two users sending the same song (same bytes, model and options) share one run: the
second caller boards the first one's :class:`Flight` and gets its result with
``cache_hit=True``. A flight stops only when its last caller left, or for the pool's
own reasons (shutdown); a caller leaving hands ownership to the next one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from separation.cache.results import ResultPin
from separation.errors import AudioInputError, JobFailedError, PoolError, SeparationError
from separation.jobs import JobHandle, JobResult, ProgressEvent, SeparationRequest
from separation.model.engine import SeparationJob

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Flight:
    """One computation (one cache key) and the handles waiting for its result."""

    key: str
    request: SeparationRequest
    handles: list[JobHandle]
    result: asyncio.Future[JobResult]
    admitted: asyncio.Future[None]
    owner: JobHandle | None = None
    """The handle whose request runs the model (the others get ``cache_hit=True``)."""
    task: asyncio.Task[None] | None = None
    stop_reason: PoolError | None = None
    started: bool = False
    job: SeparationJob | None = None
    separation_started_at: float = 0.0
    last_progress_at: float = 0.0
    state: ProgressEvent | None = None
    stems_pointer: str | None = None
    """The key under which to point at this song's stems once they are kept
    (``SeparationPool``: another format of the song is then encoded from them)."""

    @property
    def user_ref(self) -> str:
        return self.request.user_ref

    def publish(self, event: ProgressEvent) -> None:
        self.state = event
        for handle in self.handles:
            handle.publish(event)


Compute = Callable[[Flight], Awaitable[JobResult]]
"""Runs a flight's computation (wait for a job slot, then process the song)."""


class Flights:
    """The computations in progress, by cache key."""

    def __init__(self, compute: Compute) -> None:
        self._compute = compute
        self._by_key: dict[str, Flight] = {}

    def not_started(self) -> list[Flight]:
        """Flights still waiting for a job slot."""
        return [flight for flight in self._by_key.values() if not flight.started]

    def board(self, key: str, request: SeparationRequest, handle: JobHandle) -> Flight:
        """Join the flight for ``key`` (starting it if there is none) as ``handle``."""
        flight = self._by_key.get(key)
        if flight is None:
            flight = self._start(key, request)
        elif flight.state is not None:
            handle.publish(flight.state)
        flight.handles.append(handle)
        flight.owner = flight.owner or handle
        return flight

    async def result_for(self, flight: Flight, handle: JobHandle) -> JobResult:
        """Wait for ``flight`` as ``handle``; leaving early stops it if nobody else waits."""
        try:
            shared = await asyncio.shield(flight.result)
            # Each caller delivers on its own schedule, so each holds its own pin.
            pin = shared.pin.share() if isinstance(shared.pin, ResultPin) else None
            result = dataclasses.replace(shared, pin=pin)
        finally:
            flight.handles.remove(handle)
            if flight.owner is handle and not flight.result.done():
                flight.owner = flight.handles[0] if flight.handles else None
                if flight.owner is not None:  # the leaver's caller may delete its input file
                    flight.request = flight.owner.request
            if not flight.handles:
                if flight.result.done():
                    _release_flight_result(flight)
                else:
                    self.stop(flight, None)
        if flight.owner is handle:
            return result
        return dataclasses.replace(result, cache_hit=True)  # joined someone else's run

    def stop(self, flight: Flight, reason: PoolError | None) -> None:
        """Cancel a computation: for its callers (``reason`` None) or the pool's reasons."""
        if flight.task is not None and not flight.task.done():
            flight.stop_reason = reason
            flight.task.cancel()

    def _start(self, key: str, request: SeparationRequest) -> Flight:
        loop = asyncio.get_running_loop()
        flight = Flight(key, request, [], loop.create_future(), loop.create_future())
        flight.result.add_done_callback(lambda future: future.cancelled() or future.exception())
        flight.task = asyncio.create_task(self._run(flight))
        self._by_key[key] = flight
        return flight

    async def _run(self, flight: Flight) -> None:
        try:
            result = await self._compute(flight)
        except asyncio.CancelledError:
            error: Exception = flight.stop_reason or JobFailedError("stopped")
            flight.result.set_exception(error)
        except Exception as error:
            if not isinstance(error, AudioInputError | SeparationError):
                logger.error("job for %s failed", flight.user_ref, exc_info=error)
            flight.result.set_exception(typed_error(error))
        else:
            flight.result.set_result(result)
            if not flight.handles:
                result.release()
        finally:
            if self._by_key.get(flight.key) is flight:
                del self._by_key[flight.key]


def typed_error(error: Exception) -> Exception:
    """Typed errors pass through; anything else becomes a ``JobFailedError`` with a cause."""
    if isinstance(error, AudioInputError | SeparationError):
        return error
    wrapped = JobFailedError(f"separation failed: {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped


def _release_flight_result(flight: Flight) -> None:
    """Drop the computation's own pin once every caller has taken theirs."""
    future = flight.result
    if not future.cancelled() and future.exception() is None:
        future.result().release()
