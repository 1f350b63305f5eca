"""Following a submitted song to its delivery: progress, the quota's settling, failures.

Part of :class:`bot.chat.conversation.flow.ChatFlow` (see ``flow_core``). A job is
submitted with its typed order (``bot.chat.conversation.order``) read back from its
record, whether it was reserved a moment ago or resumed after a restart; one progress
message follows it; "Done!" is shown before the files; any failure refunds the quota
(the store does that) and is explained in one sentence.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from bot.chat.conversation import messages
from bot.chat.conversation.controls import ControlState
from bot.chat.conversation.credits import display_title, file_stem
from bot.chat.conversation.delivery import delivered_credits, outgoing_files
from bot.chat.conversation.flow_core import FLOW_LOGGER, FlowCore
from bot.chat.conversation.order import ReceivedSong, SongOrder
from bot.chat.conversation.progress import ProgressMessage
from bot.chat.conversation.types import ChatUser, Replier
from separation.errors import JobCancelledError, PoolShutdownError
from separation.jobs import (
    Attempt,
    Decoded,
    Done,
    JobHandle,
    JobResult,
    Queued,
    Running,
    SeparationRequest,
)
from storage.errors import JobStateError, QuotaRefusedError, StorageError
from storage.records import JobRecord, JobStatus, QuotaLimits

logger = logging.getLogger(FLOW_LOGGER)


@dataclass(frozen=True)
class _Delivery:
    """What the delivery of one song needs to know besides its files."""

    title: str | None
    performer: str | None
    started: float
    """``time.monotonic()`` when it was submitted."""
    running_since: float | None
    """When its run began (None: a cache hit, or it ran between two progress events)."""
    separation_key: str
    """The separation's cache key, recorded with the job even when a render is sent."""
    tag_lyrics: str | None = None
    """The words the song's tags carry (the separation's), kept for its videos."""


class JobFollowing(FlowCore):
    """Submit a reserved job, mirror its events, deliver its files, record the outcome."""

    async def run_job(
        self,
        user: ChatUser,
        job: JobRecord,
        replier: Replier,
        *,
        progress: ProgressMessage | None = None,
        received: ReceivedSong | None = None,
        limits: QuotaLimits | None = None,
    ) -> JobRecord:
        """Submit a reserved job and see it through (also used to resume after a restart).

        The song's order (stem mode, format, controls, its progress message) is read
        back typed from the job, so a job resumed after a restart is delivered the way
        the user asked for it. Without ``received`` (a resumed job) the song's own tags
        name the files, else its file name. ``limits`` are the platform's default limits
        the song was received with (looked up here for a resumed job).
        """
        if limits is None:
            limits = self._config.quota_limits(user.platform)
        frontend = self._config.frontend_id
        if frontend is not None and not await self._store.deliveries.claim(
            job.id, frontend, self._config.delivery_lease_seconds
        ):
            logger.info("job %s: another front-end delivers it", job.id)
            return job
        order = SongOrder.of_job(job)
        if progress is None:
            progress = self._progress_message(replier)
            ref = order.progress_message
            if ref is not None and (handle := replier.message_handle(ref)) is not None:
                progress.continue_in(handle)  # a restart: go on in the same message
        started = time.monotonic()
        try:
            handle = await self._backend.submit(
                self._separation_request(user, job, order, replier, received)
            )
        except Exception as exc:
            return await self._fail(job, exc, progress, user)
        self._handles.setdefault(user.ref, {})[job.id] = handle
        logger.info("job %s queued for %s", job.id, user.ref)
        try:
            result, running_since = await self._follow(job, handle, progress, user, limits)
        except Exception as exc:
            await self._abandon(job, handle)
            return await self._fail(job, exc, progress, user)
        finally:
            self._handles.get(user.ref, {}).pop(job.id, None)
        separation_key = result.cache_key  # what the job records: renders start from it
        tag_lyrics = result.tag_lyrics  # a render of it made for the order carries none
        try:
            result = await self._as_ordered(result, order, replier)
        except Exception as exc:
            return await self._fail(job, exc, progress, user)
        title, performer = (received.title, received.performer) if received else (None, None)
        song = _Delivery(title, performer, started, running_since, separation_key, tag_lyrics)
        try:
            return await self._deliver(user, job, order, replier, result, progress, song)
        finally:
            result.release()  # the cache may evict the files again

    def _separation_request(
        self,
        user: ChatUser,
        job: JobRecord,
        order: SongOrder,
        replier: Replier,
        received: ReceivedSong | None,
    ) -> SeparationRequest:
        """What the backend is asked: the job's order, with the upload's SHA-256 taken
        once as it was saved (the backend does not read the file again to learn it)."""
        assert job.input_path is not None
        title = received.title if received is not None else None
        return SeparationRequest(
            user_ref=user.ref,
            input_path=job.input_path,
            input_sha256=job.input_sha256,
            stems=order.stems,
            encoding=order.encoding(self._config.encoding),
            max_output_bytes=replier.upload_plan.max_file_bytes,
            min_mp3_bitrate=self._config.min_mp3_bitrate,
            fallback_title=title or display_title(file_stem(job.original_filename)),
            job_id=str(job.id),
            probe=received.probe if received is not None else None,
        )

    async def _as_ordered(self, result: JobResult, order: SongOrder, replier: Replier) -> JobResult:
        """The separation rendered with the controls the song was sent with, if any."""
        if order.controls.is_identity:
            return result
        return await self.rerender.apply(
            result,
            order.controls,
            encoding=order.encoding(self._config.encoding),
            max_output_bytes=replier.upload_plan.max_file_bytes,
        )

    async def _deliver(
        self,
        user: ChatUser,
        job: JobRecord,
        order: SongOrder,
        replier: Replier,
        result: JobResult,
        progress: ProgressMessage,
        song: _Delivery,
    ) -> JobRecord:
        """Show "Done!", send the result files and record the job as done (with the
        separation's cache key, even when ``result`` is a render of it)."""
        title, performer, started = song.title, song.performer, song.started
        running_since = song.running_since
        state = ControlState(job.control_token or "", order.controls)
        # Instrumental first: the backend orders outputs that way.
        files = outgoing_files(
            job,
            state,
            result,
            controls_available=self.rerender.available,
            title=title,
            performer=performer,
            video_size=self.rerender.video_size,
        )
        # The final state is shown before the files, never after them (issue 11): edit
        # throttling may delay the intermediate states, not this one.
        await progress.final(messages.DONE)
        try:
            await replier.send_files(files)
        except Exception as exc:
            return await self._fail(job, exc, progress, user)
        done = await self._store.jobs.mark_done(
            job.id, cache_hit=result.cache_hit, cache_key=song.separation_key
        )
        # Counted with no await after mark_done: whoever sees the job done sees it counted.
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
        await self._note_for_videos(job, result, song)
        return done

    async def _note_for_videos(self, job: JobRecord, result: JobResult, song: _Delivery) -> None:
        """Keep the song's credits and its tags' words for its karaoke videos."""
        videos = self.rerender.videos
        if videos is None or self.rerender.video_size is None or job.order.stems == "four":
            return
        title, artist = delivered_credits(job, result, song.title, song.performer)
        await videos.finder.note_delivery(
            job, title=title, artist=artist, tag_lyrics=song.tag_lyrics
        )

    async def _follow(
        self,
        job: JobRecord,
        handle: JobHandle,
        progress: ProgressMessage,
        user: ChatUser,
        limits: QuotaLimits,
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
                await self._settle(job, handle, user, event.duration_seconds, limits)
            elif isinstance(event, Attempt):  # a distributed backend's worker started it
                await self._store.deliveries.set_queue_job(job.id, event.queue_job_id)
                await self._store.deliveries.record_attempt(job.id, event.number)
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
            await self._store.jobs.settle_duration(
                job.id, result.duration_seconds, limits, enforce=False
            )
        return result, running_since

    async def _record_start(self, job: JobRecord) -> None:
        """Record that the job's run began. A job already running is one whose start the
        front-end that had it before recorded after ``job`` was read (a takeover): the
        same run, not an error."""
        try:
            await self._store.jobs.mark_running(job.id)
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
        self,
        job: JobRecord,
        handle: JobHandle,
        user: ChatUser,
        decoded_seconds: float,
        limits: QuotaLimits,
    ) -> None:
        """Charge the decoded length; stop the job if the true length does not fit."""
        try:
            await self._store.jobs.settle_duration(job.id, decoded_seconds, limits)
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
                await self._store.deliveries.release(job.id, self._config.frontend_id)
            return job
        try:
            if isinstance(error, JobCancelledError):
                record = await self._store.jobs.mark_cancelled(job.id)
            else:
                record = await self._store.jobs.mark_failed(
                    job.id, getattr(error, "kind", "internal")
                )
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
