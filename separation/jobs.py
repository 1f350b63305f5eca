"""What callers of a separation backend see: requests, handles, progress events, results.

The chat flow talks to a :class:`SeparationBackend` and never to workers or models, so a
distributed backend (a later issue) can stand behind the same interface. That is also why
:class:`JobHandle` is a plain class fed with events by whichever backend owns the job,
rather than a view into the in-process pool's internals.

Progress is a stream of small dataclasses. Intermediate ``Queued``/``Running`` events are
coalesced for a slow reader (only the latest one waits to be read), so a caller that
never reads costs a few objects, not one per segment.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from separation.audio.encode import EncodingSpec, StemMode
from separation.audio.ffmpeg import ProbeResult
from separation.cpu_budget import Lane
from separation.errors import JobCancelledError

if TYPE_CHECKING:  # torch comes with it; callers that build a RenderRequest have it anyway
    from separation.audio.render_options import RenderOptions
    from separation.video.request import VideoRequest


INSTRUMENTAL = "instrumental"
"""The output every two-stem result starts with (then "vocals")."""


@dataclass(frozen=True)
class SeparationRequest:
    """One song to separate, and what the caller wants back."""

    user_ref: str
    """Who asked ("telegram:42"): the unit of fairness and of the per-user limit."""
    input_path: Path
    """The input, already saved by the caller under a name it chose (never the user's)."""
    input_sha256: str | None = None
    """The input's SHA-256 (hex), when the caller took it as it saved the file (the chat
    flow does): the backend keys its cache with it instead of reading the file again to
    hash it. None: the backend hashes the file (the command line, tests)."""
    stems: StemMode = "two"
    encoding: EncodingSpec = field(default_factory=EncodingSpec)
    max_output_bytes: int | None = None
    """Per output file. For MP3 the bitrate is lowered to fit, or the job fails with
    ``OutputTooLargeError`` before the model runs."""
    min_mp3_bitrate: int = 96
    fallback_title: str | None = None
    """Title for the output tags when the input has none (default: the input's stem)."""
    job_id: str | None = None
    """Caller-chosen id (for example the database row); a random one otherwise."""
    probe: ProbeResult | None = None
    """The header the caller already read (``inspect_audio``): the backend decodes with it
    instead of probing the file a second time."""


@dataclass(frozen=True)
class RenderRequest:
    """A separated song again, in another key or tempo or with a guide vocal: a re-mix of
    its kept stems (``separation.rendering.controls``), never the model."""

    cache_key: str
    """The separation's result (``JobResult.cache_key``)."""
    options: RenderOptions
    encoding: EncodingSpec = field(default_factory=EncodingSpec)
    max_output_bytes: int | None = None
    min_mp3_bitrate: int = 96
    lane: Lane = Lane.AFTER_THE_FACT
    """A button pressed under a delivered song is an extra; the controls a song was
    sent with (``/karaoke key:-2``) are part of its first result (``Lane.FIRST_RESULT``):
    the latter's CPU slots go first and are never counted against
    ``PoolConfig.max_queued_renders``."""
    stems: StemMode | None = None
    """The outputs to render: ``"two"`` (instrumental and vocals, which four-stem stems
    give too), ``"four"``; None: the separation's own outputs."""
    video: VideoRequest | None = None
    """A karaoke video instead of audio files: the instrumental (with ``options``) as its
    sound track and these words on screen; the one output is ``separation.video.request.VIDEO``
    and ``encoding`` is ignored (``max_output_bytes`` still caps the file)."""


@runtime_checkable
class Releasable(Protocol):
    """What keeps a result's files in place until they are delivered: a cache pin in
    process, a downloaded copy for a remote backend."""

    def release(self) -> None: ...


@dataclass(frozen=True)
class JobResult:
    outputs: dict[str, Path]
    """Output name -> file, instrumental first. The files belong to the result cache and
    are pinned there for this caller: copy or upload them, then call :meth:`release`."""
    duration_seconds: float
    cache_hit: bool
    bitrate_kbps: int | None
    """The MP3/Opus bitrate used (lowered to fit ``max_output_bytes``); None for FLAC/WAV."""
    cache_key: str
    """The result cache's key for these files (input hash + model + settings): what a job
    record keeps, so an operator can tell which jobs one cache entry served."""
    input_tags: dict[str, str] = field(default_factory=dict)
    tag_lyrics: str | None = None
    """The words the song file's own tags carry (LRC or plain text, cleaned and bounded by
    ``separation.lyrics``), read when it was separated; None when it has none."""
    lyrics_timing: str | None = None
    """A video's ``separation.lyrics.model.Timing`` value (the reply says when it is
    approximate); None for audio."""
    pin: Releasable | None = field(default=None, compare=False, repr=False)

    def release(self) -> None:
        """The files are delivered: the cache may evict them again (idempotent)."""
        if self.pin is not None:
            self.pin.release()


@dataclass(frozen=True)
class Decoded:
    """The song is decoded: its true length, which may differ from what its header said.

    Published before the model runs, so a caller that charges by length can settle the
    charge (or stop the job) before the expensive part.
    """

    duration_seconds: float


@dataclass(frozen=True)
class Queued:
    position: int
    """1 = next to start."""
    eta_seconds: float | None
    """Estimated wait before the job starts; None until the pool has measured its speed."""


@dataclass(frozen=True)
class Running:
    fraction: float
    eta_seconds: float | None
    """Estimated time left, extrapolated from this job's own progress so far."""


@dataclass(frozen=True)
class Attempt:
    """A remote backend's worker started the job: the first time, or again after the
    worker before it died. The in-process pool never publishes it."""

    number: int
    queue_job_id: int


@dataclass(frozen=True)
class Done:
    result: JobResult


@dataclass(frozen=True)
class Failed:
    error: Exception
    """``AudioInputError`` (the user's file), ``PoolError`` or another ``SeparationError``."""


@dataclass(frozen=True)
class Cancelled:
    pass


ProgressEvent = Queued | Decoded | Attempt | Running | Done | Failed | Cancelled
_TERMINAL = (Done, Failed, Cancelled)


class _Subscriber:
    """One reader's pending events; a newer Queued/Running replaces an unread one."""

    def __init__(self, first: ProgressEvent | None) -> None:
        self.pending: deque[ProgressEvent] = deque([first] if first is not None else [])
        self.ready = asyncio.Event()
        if first is not None:
            self.ready.set()

    def push(self, event: ProgressEvent) -> None:
        if self.pending and not isinstance(event, _TERMINAL):
            if type(self.pending[-1]) is type(event):
                self.pending.pop()
        self.pending.append(event)
        self.ready.set()


class JobHandle:
    """A submitted job: its id, its progress events, its result, and a way to cancel it.

    Backends create handles and call :meth:`publish`; callers only read and cancel.
    """

    def __init__(
        self, job_id: str, request: SeparationRequest, cancel: Callable[[], Awaitable[None]]
    ) -> None:
        self.job_id = job_id
        self.request = request
        self._cancel = cancel
        self._state: ProgressEvent | None = None
        self._subscribers: list[_Subscriber] = []
        self._outcome: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()
        # An outcome nobody awaited must not log "exception was never retrieved".
        self._outcome.add_done_callback(lambda future: future.cancelled() or future.exception())

    @property
    def user_ref(self) -> str:
        return self.request.user_ref

    @property
    def state(self) -> ProgressEvent | None:
        """The latest event (None before the backend published any)."""
        return self._state

    @property
    def done(self) -> bool:
        """True once the job reached Done, Failed or Cancelled."""
        return self._outcome.done()

    async def events(self) -> AsyncIterator[ProgressEvent]:
        """The latest event, then every later one, ending after Done/Failed/Cancelled."""
        subscriber = _Subscriber(self._state)
        if self.done:
            if self._state is not None:
                yield self._state
            return
        self._subscribers.append(subscriber)
        try:
            while True:
                await subscriber.ready.wait()
                event = subscriber.pending.popleft()
                if not subscriber.pending:
                    subscriber.ready.clear()
                yield event
                if isinstance(event, _TERMINAL):
                    return
        finally:
            self._subscribers.remove(subscriber)

    async def result(self) -> JobResult:
        """Wait for the result.

        Raises:
            JobCancelledError: the job was cancelled.
            AudioInputError, PoolError, SeparationError: the job failed.
        """
        return await asyncio.shield(self._outcome)

    async def cancel(self) -> None:
        """Cancel the job; returns once it has stopped. No effect on a finished job."""
        if not self.done:
            await self._cancel()

    def publish(self, event: ProgressEvent) -> None:
        """Record ``event`` and pass it to readers (backends only; ignored once finished)."""
        if self.done:
            return
        self._state = event
        for subscriber in self._subscribers:
            subscriber.push(event)
        if isinstance(event, Done):
            self._outcome.set_result(event.result)
        elif isinstance(event, Failed):
            self._outcome.set_exception(event.error)
        elif isinstance(event, Cancelled):
            self._outcome.set_exception(JobCancelledError())


class SeparationBackend(Protocol):
    """What the chat flow needs from whatever separates songs (in process or remote)."""

    async def start(self) -> None:
        """Load models and start serving; call once before :meth:`submit`."""
        ...

    async def submit(self, request: SeparationRequest) -> JobHandle:
        """Accept a job and return its handle at once (the work happens later).

        Raises:
            PoolBusyError: the queue is full (``retry_after_seconds`` says when to retry).
            UserJobLimitError: the user already has the maximum number of jobs.
            PoolShutdownError: the backend is shutting down.
        """
        ...

    @property
    def queue_length(self) -> int:
        """Jobs accepted but not started yet."""
        ...

    def active_jobs(self, user_ref: str) -> int:
        """The user's jobs that are queued or running."""
        ...

    # ``timeout`` is the running jobs' grace period, not a limit on this call's wait.
    async def shutdown(self, timeout: float) -> list[JobHandle]:  # noqa: ASYNC109
        """Stop accepting work, give running jobs ``timeout`` seconds to finish, and fail the
        rest with ``PoolShutdownError``; returns the handles of the jobs not completed."""
        ...


@runtime_checkable
class RenderingBackend(Protocol):
    """A backend that can re-render a separated song from its kept stems (the local pool,
    and the distributed backend, whose workers share the stems in the blob store)."""

    async def render(self, request: RenderRequest) -> JobResult:
        """Raises: RendersBusyError, StemsExpiredError, OutputTooLargeError,
        AudioExportError."""
        ...

    async def cached_render(self, request: RenderRequest) -> JobResult | None:
        """The render's files if they were made before (pinned: release them), else
        None; costs no CPU, so a caller can tell a free press from one to charge."""
        ...
