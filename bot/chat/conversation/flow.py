"""The chat flow, written once for every platform.

A song arrives -> it is recorded as accepted before the platform considers the message
delivered (``bot.chat.conversation.intake``: a crash before its job exists cannot lose it silently)
->
what can be refused without the file (a ban, no songs left, too many in progress) is
refused at once -> it is downloaded (with a byte limit enforced while streaming) -> its
header is checked -> quota is reserved -> the job is submitted to the separation backend
-> one progress message follows it (kept with the job, so a restart goes on in it) ->
"Done!" is shown and the files are delivered -> the job is recorded.

Uploads are hostile until proven otherwise: downloads and header checks run a bounded
number at a time across all users (the rest wait in line, off the event loop); the
header travels with the job so the backend never probes twice; a file whose header
gives no length is measured before it is admitted; and the charge follows the *decoded*
length, reported by the backend before the model runs (``Decoded``), so a header that
lies neither dodges the quota nor the per-song limit.
Any failure on the way refunds the quota (the store does that when a job fails or is
cancelled) and is explained in one friendly sentence; unexpected failures get a short
reference id that is also in the log.


Adapters call :class:`ChatFlow` with platform-neutral values (``bot.chat.conversation.types``); the
flow
never sees a Telegram or Discord object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.chat.conversation import intake as intake_journal
from bot.chat.conversation import messages
from bot.chat.conversation.controls import ControlState
from bot.chat.conversation.credits import display_title, file_stem, song_credits
from bot.chat.conversation.delivery import outgoing_files
from bot.chat.conversation.intake import SongWishes
from bot.chat.conversation.job_options import job_encoding, render_option, stored_controls
from bot.chat.conversation.progress import MIN_EDIT_INTERVAL_SECONDS, ProgressMessage
from bot.chat.conversation.ratelimit import RateDecision, RateLimiter
from bot.chat.conversation.render_allowance import RenderAllowance
from bot.chat.conversation.rerender import Rerenderer
from bot.chat.conversation.types import (
    ByteStream,
    ChatUser,
    Conversation,
    Replier,
    SongUpload,
    error_reference,
)
from bot.ops.metrics import Metrics
from separation.audio.decode import AudioLimits, inspect_audio, measure_duration
from separation.audio.encode import EncodingSpec, OutputFormat, StemMode
from separation.audio.ffmpeg import ProbeResult
from separation.audio.render_options import RenderOptions
from separation.errors import AudioInputError, JobCancelledError, PoolShutdownError
from separation.jobs import (
    Attempt,
    Decoded,
    Done,
    JobHandle,
    JobResult,
    Queued,
    Running,
    SeparationBackend,
    SeparationRequest,
)
from storage.errors import (
    IntakeExistsError,
    JobStateError,
    QuotaExceededError,
    QuotaRefusedError,
    StorageError,
    TooManyConcurrentJobsError,
    UploadTooLargeError,
)
from storage.files import SavedUpload
from storage.intake import IntakeRecord
from storage.records import (
    ChatRef,
    JobRecord,
    JobRequest,
    JobStatus,
    Platform,
    QuotaLimits,
    UserRecord,
)
from storage.store import Store

logger = logging.getLogger(__name__)

PROGRESS_MESSAGE_OPTION = "progress_message"
"""Key of the progress message's id in a job's stored options (see ``_progress_ref``)."""


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
    options: dict[str, Any] = field(default_factory=dict)
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


def utc_now() -> datetime:
    return datetime.now(UTC)


async def _nothing_more() -> JobRecord | None:
    """The handling of a song that another delivery of its message handles already."""
    return None


class ChatFlow:
    """Receive a song, keep the user informed, deliver the results, record everything."""

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
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``render_limiter``, ``render_allowance``: the karaoke controls' own rate limit
        and daily allowance of audio (``bot.chat.conversation.rerender``)."""
        self._store = store
        self._clock = clock
        """Wall clock for the times users read ("frees up in 3 h"); tests pin it."""
        self._backend = backend
        self._config = config
        self._metrics = metrics
        self._rate_limiter = rate_limiter
        self._handles: dict[str, dict[int, JobHandle]] = {}
        self._download_slots = asyncio.Semaphore(config.max_parallel_downloads)
        self._probe_slots = asyncio.Semaphore(config.max_parallel_probes)
        self.rerender = Rerenderer(
            store=store,
            backend=backend,
            encoding=config.encoding,
            min_mp3_bitrate=config.min_mp3_bitrate,
            limiter=render_limiter,
            allowance=render_allowance,
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

    def admit(self, user: ChatUser) -> RateDecision:
        """The per-user request rate limit, checked by adapters before any other work.

        Adapters answer a refusal with ``decision.notice()`` only when ``notify`` is set,
        so a flooding user gets one message, not one per spam message.
        """
        if self._rate_limiter is None or user.is_admin:
            return RateDecision(allowed=True, notify=False, retry_after_seconds=0.0)
        decision = self._rate_limiter.check(user.ref)
        if not decision.allowed:
            logger.info("rate limited %s for %.0f s", user.ref, decision.retry_after_seconds)
            if self._metrics is not None:
                self._metrics.quota_refused("rate_limit")
        return decision

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

    # -- songs ----------------------------------------------------------------------------
    async def accept_song(
        self,
        user: ChatUser,
        conversation: Conversation,
        replier: Replier,
        upload: SongUpload,
        *,
        stems: StemMode = "two",
        output_format: OutputFormat | None = None,
        controls: RenderOptions | None = None,
    ) -> Coroutine[Any, Any, JobRecord | None]:
        """Record the song as accepted, then hand back the rest of its handling for the
        adapter to run in a task (``self.spawn(await flow.accept_song(...))``).

        Adapters await this in the platform's handler itself, before the platform
        may
        consider the message delivered, so that a crash from then on cannot lose the song
        silently (``bot.chat.conversation.intake``). A song that cannot be recorded (no file
        reference,
        a database error) still goes on, as it did before there was a record.
        """
        wishes = SongWishes(stems, output_format, controls)
        try:
            intake = await self._journal(user, conversation, upload, wishes)
        except IntakeExistsError as exc:  # this message's song is under way (or resumed)
            logger.info(
                "song of %s delivered again; already accepted as %s", user.ref, exc.intake_id
            )
            return _nothing_more()
        return self._run_song(
            user, conversation, replier, upload, wishes, self._progress_message(replier), intake
        )

    async def handle_song(
        self,
        user: ChatUser,
        conversation: Conversation,
        replier: Replier,
        upload: SongUpload,
        *,
        stems: StemMode = "two",
        output_format: OutputFormat | None = None,
        controls: RenderOptions | None = None,
    ) -> JobRecord | None:
        """Run one song from upload to delivered files; never raises for the user's errors.

        :meth:`accept_song` and the handling it hands back, in one call. Returns the job's
        final record, or None when it was refused before a job existed.
        """
        handling = await self.accept_song(
            user,
            conversation,
            replier,
            upload,
            stems=stems,
            output_format=output_format,
            controls=controls,
        )
        return await handling

    async def resume_song(
        self, user: ChatUser, intake: IntakeRecord, replier: Replier, stream: ByteStream | None
    ) -> JobRecord | None:
        """Go on with a song a previous process accepted and left without a job.

        It is fetched again through ``stream`` and run as the user asked, in its own
        progress message when that message's id was recorded. When it cannot be fetched
        again (the platform gives no way to, it was accepted longer than
        :data:`bot.chat.conversation.intake.MAX_AGE` ago, or the download fails) the user is told in
        one sentence that it was lost; nothing is charged for it.
        """
        progress = self._progress_message(replier)
        ref = intake.progress_message
        if ref is not None and (handle := replier.message_handle(ref)) is not None:
            progress.continue_in(handle)  # end the "Downloading..." the crash left
        if stream is None or self._clock() - intake.accepted_at > intake_journal.MAX_AGE:
            logger.info("accepted song %s of %s: cannot fetch it again", intake.id, user.ref)
            try:
                await progress.final(messages.LOST_BEFORE_SAVED)  # told first: never silence
            except Exception as exc:  # e.g. the user blocked the bot: no use trying again
                logger.warning("accepted song %s: could not tell its user: %s", intake.id, exc)
            await self._forget(intake.id)
            return None
        logger.info("accepted song %s of %s: fetching it again", intake.id, user.ref)
        return await self._run_song(
            user,
            intake_journal.conversation_of(intake, user),
            replier,
            intake_journal.upload_of(intake, stream),
            intake_journal.wishes_of(intake),
            progress,
            intake,
            resumed=True,
        )

    async def _journal(
        self,
        user: ChatUser,
        conversation: Conversation,
        upload: SongUpload,
        wishes: SongWishes,
    ) -> IntakeRecord | None:
        """Record an accepted song (``bot.chat.conversation.intake``); None when it cannot be.

        Raises:
            IntakeExistsError: the platform delivered this message again.
        """
        try:
            request = intake_journal.intake_request(
                conversation, upload, wishes, holder=self._config.frontend_id
            )
            if request is None:
                return None
            return await self._store.accept_song(
                user.platform, user.user_id, user.display_name, request
            )
        except IntakeExistsError:
            raise
        except Exception as exc:  # the song goes on; only a crash before its job loses it
            logger.warning("could not record the song of %s as accepted: %s", user.ref, exc)
            return None

    async def _forget(self, intake_id: int) -> None:
        """The accepted song has a final answer and no job: drop its record."""
        try:
            await self._store.forget_intake(intake_id)
        except StorageError as exc:  # it is resumed once more at the next start, at worst
            logger.warning("accepted song %s: could not drop its record: %s", intake_id, exc)

    async def _note_progress(
        self, intake: IntakeRecord | None, replier: Replier, progress: ProgressMessage
    ) -> None:
        """Record the id of the accepted song's progress message, so that a restart ends
        that message rather than leaving it at "Downloading..."."""
        if intake is None or intake.progress_message is not None or progress.handle is None:
            return  # nothing to record, or resumed in the message on record
        ref = replier.message_ref(progress.handle)
        if ref is None:
            return
        try:
            await self._store.note_intake_progress(intake.id, ref)
        except StorageError as exc:  # a restart then tells the user in a new message
            logger.warning("accepted song %s: could not record its message: %s", intake.id, exc)

    async def _run_song(
        self,
        user: ChatUser,
        conversation: Conversation,
        replier: Replier,
        upload: SongUpload,
        wishes: SongWishes,
        progress: ProgressMessage,
        intake: IntakeRecord | None,
        *,
        resumed: bool = False,
    ) -> JobRecord | None:
        """The song's handling after it was accepted; its record goes when it is refused
        (reserving its job removes the record in the same transaction)."""
        job = await self._receive(
            user, conversation, replier, upload, wishes, progress, intake, resumed=resumed
        )
        if job is None and intake is not None:
            await self._forget(intake.id)
        return job

    async def _receive(
        self,
        user: ChatUser,
        conversation: Conversation,
        replier: Replier,
        upload: SongUpload,
        wishes: SongWishes,
        progress: ProgressMessage,
        intake: IntakeRecord | None,
        *,
        resumed: bool,
    ) -> JobRecord | None:
        """Refuse early, download, check and run the song (see :meth:`handle_song`)."""
        try:
            if intake is not None:  # recorded as seen when the song was accepted
                record = intake.user
            else:
                record = await self._store.upsert_user(
                    user.platform, user.user_id, user.display_name
                )
            # Refuse what can be refused without the file before downloading it, at once.
            if (refusal := await self._refusal_before_download(user, record)) is not None:
                await progress.final(refusal)
                return None
            plan = replier.upload_plan
            max_download = min(plan.max_download_bytes, self._config.limits.max_input_bytes)
            if upload.declared_size is not None and upload.declared_size > max_download:
                logger.info(
                    "refused %s: declared size %d > %d",
                    user.ref,
                    upload.declared_size,
                    max_download,
                )
                await progress.final(
                    messages.too_big_to_download(upload.declared_size, max_download)
                )
                return None
            await progress.show(messages.DOWNLOADING)
            await self._note_progress(intake, replier, progress)
            async with self._download_slots:
                saved = await self._store.files.save_upload(upload.stream(), max_bytes=max_download)
        except UploadTooLargeError as exc:
            await progress.final(messages.too_big_to_download(None, exc.max_bytes))
            return None
        except QuotaRefusedError as exc:
            await progress.final(messages.quota_refused(exc, now=self._clock()))
            return None
        except Exception as exc:
            if not resumed:
                await self._internal_error(progress, exc, user, job_id=None)
                return None
            logger.info("accepted song of %s: fetching it again failed: %s", user.ref, exc)
            await progress.final(messages.LOST_BEFORE_SAVED)
            return None
        encoding = self._config.encoding
        if wishes.output_format is not None and wishes.output_format != encoding.format:
            encoding = dataclasses.replace(encoding, format=wishes.output_format)
        return await self._check_and_run(
            user,
            record,
            conversation,
            replier,
            upload,
            saved,
            progress,
            wishes.stems,
            encoding,
            wishes.controls,
            intake=intake,
        )

    async def _refusal_before_download(self, user: ChatUser, record: UserRecord) -> str | None:
        """Why the user's next song would be refused whatever its length, or None.

        A ban, no songs left in the rolling 24 h, too many songs in progress, or no audio
        time left at all: none of these need the file, so the user is told before a byte
        is downloaded. The song's length is only known after the download; whether its
        minutes fit is checked then (``reserve_job`` checks everything again, atomically).
        """
        if record.is_banned:
            return messages.BANNED
        status = await self._store.quota_status(record, self._config.quota_limits(user.platform))
        limits = status.limits
        refusal: QuotaRefusedError | None = None
        most_at_once = limits.max_concurrent_jobs
        if most_at_once is not None and status.active_jobs >= most_at_once:
            refusal = TooManyConcurrentJobsError(active=status.active_jobs, limit=most_at_once)
        elif status.songs_left is not None and status.songs_left < 1:
            refusal = QuotaExceededError(
                limit="songs_per_day",
                remaining=0,
                frees_at=status.frees_at if limits.songs_per_day else None,
            )
        elif status.audio_minutes_left is not None and status.audio_minutes_left * 60 < 1:
            refusal = QuotaExceededError(
                limit="audio_minutes_per_day",
                remaining=0,
                frees_at=status.frees_at if limits.audio_minutes_per_day else None,
            )
        if refusal is None:
            return None
        logger.info("refused %s before downloading: %s", user.ref, type(refusal).__name__)
        if self._metrics is not None:
            self._metrics.quota_refused(type(refusal).__name__)
        return messages.quota_refused(refusal, now=self._clock())

    async def _check_and_run(
        self,
        user: ChatUser,
        record: UserRecord,
        conversation: Conversation,
        replier: Replier,
        upload: SongUpload,
        saved: SavedUpload,
        progress: ProgressMessage,
        stems: StemMode,
        encoding: EncodingSpec,
        controls: RenderOptions | None = None,
        *,
        intake: IntakeRecord | None = None,
    ) -> JobRecord | None:
        try:
            info = await self._inspect(saved)
        except AudioInputError as exc:
            logger.info("refused %s: %s (%s)", user.ref, exc.kind, getattr(exc, "detail", ""))
            self._record(user.platform, "refused", exc.kind)
            await self._store.files.delete_upload(saved.path)
            await progress.final(messages.input_refused(exc))
            return None
        except Exception as exc:
            await self._store.files.delete_upload(saved.path)
            await self._internal_error(progress, exc, user, job_id=None)
            return None
        request = JobRequest(
            input_sha256=saved.sha256,
            input_duration_seconds=info.duration_seconds or 0.0,
            input_size_bytes=saved.size_bytes,
            model=self._config.model_name,
            options={
                **self._config.options,
                "stems": stems,
                "format": encoding.format,
                **self._progress_ref(replier, progress, intake),
                **render_option(controls),
            },
            original_filename=(upload.file_name or "")[:200] or None,
            input_path=saved.path,
            chat=ChatRef(
                chat_id=conversation.chat_id,
                guild_id=conversation.guild_id,
                channel_id=conversation.channel_id,
                message_id=conversation.message_id,
            ),
            intake_id=intake.id if intake is not None else None,
        )
        try:
            job = await self._store.reserve_job(
                record,
                request,
                self._config.quota_limits(user.platform),
                delivered_by=self._config.frontend_id,
                lease_seconds=self._config.delivery_lease_seconds,
            )
        except QuotaRefusedError as exc:
            logger.info("quota refused %s: %s", user.ref, type(exc).__name__)
            await self._store.files.delete_upload(saved.path)
            if self._metrics is not None:
                self._metrics.quota_refused(type(exc).__name__)
            await progress.final(messages.quota_refused(exc, now=self._clock()))
            return None
        title, performer = song_credits(
            info.tags,
            file_name=upload.file_name,
            title_hint=upload.title_hint,
            performer_hint=upload.performer_hint,
            fallback_title=upload.fallback_title,
        )
        return await self.run_job(
            user, job, replier, progress=progress, title=title, performer=performer, probe=info
        )

    @staticmethod
    def _progress_ref(
        replier: Replier, progress: ProgressMessage, intake: IntakeRecord | None
    ) -> dict[str, str]:
        """The progress message's id, kept with the job so that after a crash and restart
        the resumed job goes on in the same message instead of leaving it at "37%"
        (a song resumed from its intake record goes on in the message on record)."""
        if intake is not None and intake.progress_message is not None:
            return {PROGRESS_MESSAGE_OPTION: intake.progress_message}
        if progress.handle is None or (ref := replier.message_ref(progress.handle)) is None:
            return {}
        return {PROGRESS_MESSAGE_OPTION: ref}

    async def _inspect(self, saved: SavedUpload) -> ProbeResult:
        """The upload's header, waiting for a free ffmpeg slot; a file whose header gives no
        length is measured (bounded) so that it is admitted and charged for what it is.

        Raises:
            AudioInputError: not audio we accept (the user's problem).
        """
        config = self._config
        async with self._probe_slots:
            info = await asyncio.to_thread(
                inspect_audio, saved.path, ffmpeg=config.ffmpeg, limits=config.limits
            )
            if info.duration_seconds is None:
                seconds = await asyncio.to_thread(
                    measure_duration, saved.path, ffmpeg=config.ffmpeg, limits=config.limits
                )
                info = dataclasses.replace(info, duration_seconds=seconds)
        return info

    async def run_job(
        self,
        user: ChatUser,
        job: JobRecord,
        replier: Replier,
        *,
        progress: ProgressMessage | None = None,
        title: str | None = None,
        performer: str | None = None,
        probe: ProbeResult | None = None,
    ) -> JobRecord:
        """Submit a reserved job and see it through (also used to resume after a restart).

        Stem mode and output format come from the job's stored options, so a job resumed
        after a restart is delivered the way the user asked for it. Without a ``title``
        (a resumed job) the song's own tags name the files, else its file name.
        """
        frontend = self._config.frontend_id
        if frontend is not None and not await self._store.claim_delivery(
            job.id, frontend, self._config.delivery_lease_seconds
        ):
            logger.info("job %s: another front-end delivers it", job.id)
            return job
        stems: StemMode = "four" if job.options.get("stems") == "four" else "two"
        encoding = job_encoding(job, self._config.encoding)
        if progress is None:
            progress = self._progress_message(replier)
            ref = job.options.get(PROGRESS_MESSAGE_OPTION)
            if ref is not None and (handle := replier.message_handle(str(ref))) is not None:
                progress.continue_in(handle)  # a restart: go on in the same message
        assert job.input_path is not None
        started = time.monotonic()
        try:
            handle = await self._backend.submit(
                SeparationRequest(
                    user_ref=user.ref,
                    input_path=job.input_path,
                    stems=stems,
                    encoding=encoding,
                    max_output_bytes=replier.upload_plan.max_file_bytes,
                    min_mp3_bitrate=self._config.min_mp3_bitrate,
                    fallback_title=title or display_title(file_stem(job.original_filename)),
                    job_id=str(job.id),
                    probe=probe,
                )
            )
        except Exception as exc:
            return await self._fail(job, exc, progress, user)
        self._handles.setdefault(user.ref, {})[job.id] = handle
        logger.info("job %s queued for %s", job.id, user.ref)
        try:
            result, running_since = await self._follow(job, handle, progress, user)
        except Exception as exc:
            await self._abandon(job, handle)
            return await self._fail(job, exc, progress, user)
        finally:
            self._handles.get(user.ref, {}).pop(job.id, None)
        separation_key = result.cache_key  # what the job records: renders start from it
        controls = stored_controls(job)
        if not controls.is_identity:
            try:
                result = await self.rerender.apply(
                    result,
                    controls,
                    encoding=encoding,
                    max_output_bytes=replier.upload_plan.max_file_bytes,
                )
            except Exception as exc:
                return await self._fail(job, exc, progress, user)
        try:
            return await self._deliver(
                user,
                job,
                replier,
                result,
                progress,
                title,
                performer,
                started,
                running_since,
                separation_key,
            )
        finally:
            result.release()  # the cache may evict the files again

    async def _deliver(
        self,
        user: ChatUser,
        job: JobRecord,
        replier: Replier,
        result: JobResult,
        progress: ProgressMessage,
        title: str | None,
        performer: str | None,
        started: float,
        running_since: float | None,
        separation_key: str,
    ) -> JobRecord:
        """Show "Done!", send the result files and record the job as done (with the
        separation's cache key, even when ``result`` is a render of it)."""
        state = ControlState(job.control_token or "", stored_controls(job))
        # Instrumental first: the backend orders outputs that way.
        files = outgoing_files(
            job,
            state,
            result,
            controls_available=self.rerender.available,
            title=title,
            performer=performer,
        )
        # The final state is shown before the files, never after them (issue 11): edit
        # throttling may delay the intermediate states, not this one.
        await progress.final(messages.DONE)
        try:
            await replier.send_files(files)
        except Exception as exc:
            return await self._fail(job, exc, progress, user)
        done = await self._store.mark_done(
            job.id, cache_hit=result.cache_hit, cache_key=separation_key
        )
        finished = time.monotonic()
        separated = not result.cache_hit
        if separated and running_since is None:  # ran between two progress events
            running_since = started
        self._record(
            user.platform, "done",
            wait_s=(running_since or finished) - started,
            processing_s=finished - running_since if running_since and separated else None,
            audio_s=result.duration_seconds if separated else None,
        )  # fmt: skip
        if self._metrics is not None:
            self._metrics.cache(result.cache_hit)
        logger.info(
            "job %s done for %s in %.1f s (%.0f s of audio, cache %s)",
            job.id,
            user.ref,
            time.monotonic() - started,
            result.duration_seconds,
            "hit" if result.cache_hit else "miss",
        )
        return done

    async def _follow(
        self, job: JobRecord, handle: JobHandle, progress: ProgressMessage, user: ChatUser
    ) -> tuple[JobResult, float | None]:
        """Mirror the job's events in the progress message; returns the result and when
        the job started running (None for a cache hit that never ran).

        Raises:
            QuotaRefusedError: the decoded song is longer than its header said and does
                not fit the user's limits; the job was cancelled.
        """
        running_since: float | None = None
        settled = False
        # A job resumed after a restart or taken over from another front-end may be
        # running on a worker already: its record says so, and the first progress event
        # goes on with that run instead of recording its start again (the store refuses
        # "running" -> "running", which once failed every song separating at a restart).
        started = job.status is JobStatus.RUNNING
        restarted = False
        async for event in handle.events():
            if isinstance(event, Decoded):
                settled = True
                await self._settle(job, handle, user, event.duration_seconds)
            elif isinstance(event, Attempt):  # a distributed backend's worker started it
                await self._store.set_queue_job(job.id, event.queue_job_id)
                await self._store.record_attempt(job.id, event.number)
                if event.number > 1:  # its percentage begins again: say why
                    restarted = True
                    await progress.show(messages.running(0.0, restarted=True))
            elif isinstance(event, Queued):
                await progress.show(messages.queued(event.position, event.eta_seconds))
            elif isinstance(event, Running):
                if running_since is None:
                    if not started:
                        await self._record_start(job)
                        started = True
                    running_since = time.monotonic()
                await progress.show(messages.running(event.fraction, restarted=restarted))
            elif isinstance(event, Done):
                break
        result = await handle.result()
        if not settled:  # a cache hit, or a run joined after its decode: record the length
            await self._store.settle_duration(
                job.id,
                result.duration_seconds,
                self._config.quota_limits(user.platform),
                enforce=False,
            )
        return result, running_since

    async def _record_start(self, job: JobRecord) -> None:
        """Record that the job's run began. A job already running is one whose start the
        front-end that had it before recorded after ``job`` was read (a takeover): the
        same run, not an error."""
        try:
            await self._store.mark_running(job.id)
        except JobStateError as exc:
            if exc.current != JobStatus.RUNNING:
                raise

    async def _abandon(self, job: JobRecord, handle: JobHandle) -> None:
        """Stop a song this flow gave up following (an error of its own, e.g. the store
        failing mid-song): its user is told it failed, uncharged, so it must not go on
        separating, and a result that arrived anyway must not stay (on the fleet: its
        downloaded files, its upload in the blob store and its ledger row)."""
        try:
            await handle.cancel()
            if handle.done:
                (await handle.result()).release()
        except Exception as exc:  # cancelled or failed already: nothing to release
            logger.debug("job %s: nothing left to release (%s)", job.id, exc)

    async def _settle(
        self, job: JobRecord, handle: JobHandle, user: ChatUser, decoded_seconds: float
    ) -> None:
        """Charge the decoded length; stop the job if the true length does not fit."""
        try:
            await self._store.settle_duration(
                job.id, decoded_seconds, self._config.quota_limits(user.platform)
            )
        except QuotaRefusedError:
            logger.info(
                "job %s of %s: decoded %.1f s, charged %.1f s; refused",
                job.id, user.ref, decoded_seconds, job.input_duration_seconds,
            )  # fmt: skip
            await handle.cancel()
            raise
        if abs(decoded_seconds - job.input_duration_seconds) > 1.0:
            logger.info(
                "job %s of %s: charged %.1f s decoded instead of %.1f s from the header",
                job.id, user.ref, decoded_seconds, job.input_duration_seconds,
            )  # fmt: skip

    async def _fail(
        self, job: JobRecord, error: Exception, progress: ProgressMessage, user: ChatUser
    ) -> JobRecord:
        progress.close()
        if isinstance(error, PoolShutdownError) and job.input_path is not None:
            # The bot is stopping: keep the job and its upload; the next start resumes it
            # (storage recovery) and delivers it here, instead of losing the song.
            logger.info("job %s of %s left for the next start", job.id, user.ref)
            await progress.final(messages.RESUME_AFTER_RESTART)
            if self._config.frontend_id is not None:  # another front-end may take it now
                await self._store.release_delivery(job.id, self._config.frontend_id)
            return job
        try:
            if isinstance(error, JobCancelledError):
                record = await self._store.mark_cancelled(job.id)
            else:
                record = await self._store.mark_failed(job.id, getattr(error, "kind", "internal"))
        except StorageError as exc:
            logger.warning("job %s: could not record failure: %s", job.id, exc)
            record = job
        cancelled = isinstance(error, JobCancelledError)
        self._record(
            user.platform,
            "cancelled" if cancelled else "failed",
            None if cancelled else getattr(error, "kind", "internal"),
        )
        if isinstance(error, JobCancelledError):
            await progress.final(messages.CANCELLED)
        elif (text := messages.for_error(error, now=self._clock())) is not None:
            logger.info(
                "job %s failed for %s: %s",
                job.id,
                user.ref,
                getattr(error, "kind", type(error).__name__),
            )
            await progress.final(text)
        else:
            await self._internal_error(progress, error, user, job_id=job.id)
        return record

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

    # -- commands -----------------------------------------------------------------------
    async def cancel(self, user: ChatUser) -> str:
        """Cancel the user's newest song in progress."""
        handles = self._handles.get(user.ref) or {}
        if not handles:
            return messages.NOTHING_TO_CANCEL
        newest = max(handles)
        await handles[newest].cancel()
        return messages.CANCELLING

    async def quota(self, user: ChatUser) -> str:
        """/quota: what is left and when it frees up."""
        record = await self._store.upsert_user(user.platform, user.user_id, user.display_name)
        status = await self._store.quota_status(record, self._config.quota_limits(user.platform))
        return messages.quota_summary(status, now=self._clock())

    async def status(self, user: ChatUser) -> str:
        """/status: the queue, the user's songs in progress and their quota."""
        record = await self._store.upsert_user(user.platform, user.user_id, user.display_name)
        jobs = await self._store.active_jobs(record)
        songs = [(display_title(job.original_filename), job.status.value) for job in jobs]
        status = await self._store.quota_status(record, self._config.quota_limits(user.platform))
        quota = messages.quota_summary(status, now=self._clock())
        return messages.status_summary(self._backend.queue_length, songs, quota)

    def help(self, *, commands: Sequence[tuple[str, str]], platform_note: str = "") -> str:
        """The help text with the platform's own command list."""
        return messages.help_text(
            max_minutes=self._config.limits.max_duration_seconds / 60,
            retention_hours=self._config.retention_hours,
            commands=commands,
            platform_note=platform_note,
        )

    # -- admin ------------------------------------------------------------------------------
    async def admin_grant(self, target: str, songs: int | None, minutes: float | None) -> str:
        """Grant a user (created if they never wrote: an admin may grant a friend first)."""
        user = await self._store.find_or_create_user(target)
        updated = await self._store.grant(user, songs_per_day=songs, audio_minutes_per_day=minutes)
        return messages.admin_granted(
            updated.ref, updated.songs_per_day_override, updated.audio_minutes_per_day_override
        )

    async def admin_ban(self, target: str, banned: bool = True) -> str:
        """Ban (an abuser may be banned before they write) or unban a known user."""
        if banned:
            user = await self._store.find_or_create_user(target)
        else:
            user = await self._store.find_chat_user(target)
        updated = await self._store.set_banned(user, banned)
        return messages.admin_banned(updated.ref, updated.is_banned)

    async def admin_stats(self) -> str:
        return messages.describe_stats(await self._store.stats())

    async def admin_command(self, command: str, args: list[str]) -> str:
        """Run an admin chat command; bad arguments give a usage line, never a traceback."""
        try:
            if command == "stats" and not args:
                return await self.admin_stats()
            if command in ("ban", "unban") and len(args) == 1:
                return await self.admin_ban(args[0], banned=command == "ban")
            if command == "grant" and len(args) in (2, 3):
                songs = int(args[1])
                minutes = float(args[2]) if len(args) == 3 else None
                return await self.admin_grant(args[0], songs, minutes)
        except ValueError as exc:  # includes the store's invalid reference / grant errors
            return messages.admin_bad_arguments(exc)
        except StorageError as exc:
            return messages.admin_refused(exc)
        return messages.ADMIN_USAGE
