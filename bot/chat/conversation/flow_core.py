"""What every part of the chat flow shares: its settings (:class:`FlowConfig`) and state.

``ChatFlow`` (``bot.chat.conversation.flow``) is written in parts, one module per job:
following a submitted job to its delivery (``following``), receiving a song and refusing
what must be refused (``receiving``), and the commands (``flow`` itself). Each part is a
class built on the one before it, so a reader finds a step by its module while the
adapters keep one object to call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.chat.conversation import messages
from bot.chat.conversation.lyrics import LyricsFinder, LyricsService
from bot.chat.conversation.progress import MIN_EDIT_INTERVAL_SECONDS, ProgressMessage
from bot.chat.conversation.ratelimit import RateLimiter
from bot.chat.conversation.render_allowance import RenderAllowance
from bot.chat.conversation.rerender import Rerenderer
from bot.chat.conversation.types import ChatUser, Replier, error_reference
from bot.chat.conversation.videos import KaraokeVideos
from bot.links.service import LinkService
from bot.ops.metrics import Metrics
from separation.audio.decode import AudioLimits
from separation.audio.encode import EncodingSpec
from separation.jobs import JobHandle, SeparationBackend
from separation.video.request import VideoLook
from storage.errors import StorageError
from storage.records import Platform, QuotaLimits
from storage.store import Store

FLOW_LOGGER = "bot.chat.conversation.flow"
"""Every part of the flow logs under the flow's one name, as it did before it was split:
operators' filters and alerts keep working."""
logger = logging.getLogger(FLOW_LOGGER)


@dataclass(frozen=True)
class FlowConfig:
    """What the flow needs from the settings (built by ``bot.process.wiring``)."""

    model_name: str
    ffmpeg: str
    limits: AudioLimits
    quota_limits: Callable[[Platform], QuotaLimits]
    """Platform -> its default per-user limits."""
    encoding: EncodingSpec = field(default_factory=EncodingSpec)
    min_mp3_bitrate: int = 96
    separation_settings: dict[str, float] = field(default_factory=dict)
    """The model's settings (``shifts``, ``overlap``), kept with each job's order for the record."""
    retention_hours: float = 24.0
    """How long results stay in the separation cache at most (``pool.cache_max_age_hours``);
    /help tells users."""
    progress_interval_seconds: float = MIN_EDIT_INTERVAL_SECONDS
    max_parallel_downloads: int = 8
    """Uploads being downloaded at once, across all users."""
    max_parallel_probes: int = 2
    """Header checks (ffmpeg) at once, across all users."""
    frontend_id: str | None = None
    """Set on a distributed front-end: the id under which it claims the delivery of each
    song it follows, so that exactly one front-end delivers it (another takes over when
    this one's lease runs out). None: one process owns every job (the local backend)."""
    delivery_lease_seconds: float = 30.0
    video_look: VideoLook = field(default_factory=VideoLook)
    """How karaoke videos look (``[video]``)."""
    videos_per_hour: int = 10
    """Karaoke videos one user may ask for in an hour (``video.videos_per_hour``)."""
    lyrics_from_tags: bool = True
    """Keep the words a song's tags carry for its videos (``lyrics.from_tags``)."""
    lyrics_alignment: bool = True
    """Plain words may be timed on the vocals (``lyrics.alignment``)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class FlowCore:
    """The state every part of the chat flow shares, and what they all do with it: its
    store, backend and settings, the jobs it follows, metrics and the one way to tell a
    user about an unexpected error. :class:`bot.chat.conversation.flow.ChatFlow` is built on
    it, one part per module (following a job, receiving a song, the commands)."""

    def __init__(
        self,
        *,
        store: Store,
        backend: SeparationBackend,
        config: FlowConfig,
        metrics: Metrics | None = None,
        rate_limiter: RateLimiter | None = None,
        render_limiter: RateLimiter | None = None,
        render_allowance: RenderAllowance | None = None,
        video_limiter: RateLimiter | None = None,
        lyrics_service: LyricsService | None = None,
        links: LinkService | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``render_limiter``, ``render_allowance``: the karaoke controls' own rate limit
        and daily allowance of audio (``bot.chat.conversation.rerender``);
        ``video_limiter``: karaoke videos' own (``KaraokeVideos.per_hour_limiter``);
        ``lyrics_service``: LRCLIB, where the operator has it on; ``links``: the
        process's link service (started and stopped by ``bot.process.app``), None where
        links are turned off."""
        self._store = store
        self._clock = clock
        """Wall clock for the times users read ("frees up in 3 h"); tests pin it."""
        self._backend = backend
        self._config = config
        self._metrics = metrics
        self._rate_limiter = rate_limiter
        self._links = links
        self._handles: dict[str, dict[int, JobHandle]] = {}
        self._download_slots = asyncio.Semaphore(config.max_parallel_downloads)
        self._probe_slots = asyncio.Semaphore(config.max_parallel_probes)
        finder = LyricsFinder(
            store=store, service=lyrics_service, from_tags=config.lyrics_from_tags
        )
        videos = KaraokeVideos(
            finder=finder,
            look=config.video_look,
            align=config.lyrics_alignment,
            limiter=video_limiter,
            per_hour=config.videos_per_hour,
        )
        self.rerender = Rerenderer(
            store=store,
            backend=backend,
            encoding=config.encoding,
            min_mp3_bitrate=config.min_mp3_bitrate,
            limiter=render_limiter,
            allowance=render_allowance,
            videos=videos,
            clock=clock,
        )
        """Karaoke controls: adapters hand it button presses and ``/key`` replies."""

    @property
    def config(self) -> FlowConfig:
        return self._config

    def _progress_message(self, replier: Replier) -> ProgressMessage:
        return ProgressMessage(
            replier.send_text,
            replier.edit_text,
            min_interval=self._config.progress_interval_seconds,
        )

    def _record(
        self,
        platform: str,
        status: str,
        error_kind: str | None = None,
        *,
        wait_s: float | None = None,
        processing_s: float | None = None,
        audio_s: float | None = None,
    ) -> None:
        if self._metrics is None:
            return
        self._metrics.job_finished(
            platform, status, wait_s=wait_s, processing_s=processing_s, audio_s=audio_s
        )
        if error_kind is not None:
            self._metrics.error(error_kind)

    async def _forget(self, intake_id: int) -> None:
        """The accepted song has a final answer and no job: drop its record."""
        try:
            await self._store.intake.forget(intake_id)
        except StorageError as exc:  # it is resumed once more at the next start, at worst
            logger.warning("accepted song %s: could not drop its record: %s", intake_id, exc)

    async def _internal_error(
        self, progress: ProgressMessage, error: BaseException, user: ChatUser, *, job_id: int | None
    ) -> None:
        reference = error_reference()
        logger.error(
            "internal error ref=%s job=%s user=%s: %s",
            reference,
            job_id,
            user.ref,
            error,
            exc_info=error,
        )
        await progress.final(messages.internal_error(reference))
