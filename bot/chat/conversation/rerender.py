"""Karaoke controls pressed: a finished song re-rendered in another key or tempo, or with
a guide vocal, and sent again with its buttons.

The platform adapters turn a button press or a ``/key -2`` reply into :meth:`press` or
:meth:`command`; everything after that is here, once for every platform. A press is
checked like any hostile input: the data must be ours, the job must exist, be finished
and belong to whoever pressed (a forwarded message's buttons refuse a stranger). Renders
cost seconds of ffmpeg, not the model, so they do not count against the song quota;
they have their own, generous rate limit and daily allowance of audio instead
(``bot.chat.conversation.render_allowance``). The backend bounds how many ffmpeg runs happen at once
(``separation.cpu_budget``), puts every song before re-renders and refuses re-renders
beyond a global bound; nothing here blocks the event loop.

The presser sees "Changing it..." at once (a render waits behind songs and may take
seconds), and that message is edited into its last state, "Here it is, -2 keys:" just
before the files, or the reason there are none: the same on every platform, since a
text message cannot be edited into files on either.

A karaoke video (issue 24) is rendered the same way: its data carries the video flag,
``bot.chat.conversation.videos`` finds its words (or asks for them) and its own rate,
and it is delivered as a video message with the same controls. It costs no song and no
allowance of re-rendered audio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from bot.chat.conversation import messages
from bot.chat.conversation.controls import BadControlError, ControlState, command_options
from bot.chat.conversation.delivery import outgoing_files
from bot.chat.conversation.order import SongOrder
from bot.chat.conversation.progress import ProgressMessage
from bot.chat.conversation.ratelimit import RateLimiter
from bot.chat.conversation.render_allowance import RenderAllowance, RenderAllowanceUsedError
from bot.chat.conversation.types import ChatUser, Replier, error_reference
from bot.chat.conversation.videos import KaraokeVideos
from separation.audio.encode import EncodingSpec
from separation.audio.render_options import RenderOptions
from separation.cpu_budget import Lane
from separation.errors import (
    InvalidRenderOptionError,
    LyricsInputError,
    OutputTooLargeError,
    PoolError,
    RenderUnavailableError,
    SeparationError,
)
from separation.jobs import JobResult, RenderingBackend, RenderRequest, SeparationBackend
from separation.lyrics.model import Timing
from separation.video.request import VideoRequest
from storage.errors import JobNotFoundError, UserNotFoundError
from storage.records import JobRecord
from storage.store import Store

logger = logging.getLogger(__name__)


@runtime_checkable
class PrivateAnswers(Protocol):
    """A replier that can answer the presser alone (Discord's ephemeral messages).

    A refused press is the presser's business: in a shared channel a stranger pressing
    someone else's button must not be answered in front of everyone (issue 23). Where a
    platform has no such answer (Telegram's presses come from private chats or answer
    into the presser's own chat), the refusal is an ordinary message.
    """

    async def answer_privately(self, text: str) -> None: ...


async def refuse(replier: Replier, text: str) -> None:
    """Tell whoever pressed why nothing happens: privately where the platform can."""
    if isinstance(replier, PrivateAnswers):
        await replier.answer_privately(text)
    else:
        await replier.send_text(text)


class Rerenderer:
    """Answers karaoke-control presses for one chat flow."""

    def __init__(
        self,
        *,
        store: Store,
        backend: SeparationBackend,
        encoding: EncodingSpec,
        min_mp3_bitrate: int,
        limiter: RateLimiter | None = None,
        allowance: RenderAllowance | None = None,
        videos: KaraokeVideos | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``videos``: karaoke videos, where the operator has them (else no "Lyrics video"
        button); ``clock``: the wall clock for when an allowance frees up (tests pin it)."""
        self._store = store
        self._backend = backend if isinstance(backend, RenderingBackend) else None
        self._encoding = encoding
        self._min_mp3_bitrate = min_mp3_bitrate
        self._limiter = limiter
        self._allowance = allowance
        self.videos = videos
        self._clock = clock

    @property
    def available(self) -> bool:
        """Whether the backend keeps stems to re-render from (else no buttons are shown)."""
        return self._backend is not None

    @property
    def video_size(self) -> tuple[int, int] | None:
        """The size videos are made in, or None where none are made (no button then)."""
        return self.videos.size if self.videos is not None and self.available else None

    async def press(self, user: ChatUser, replier: Replier, data: str) -> None:
        """A button was pressed (the adapter already acknowledged it to the platform)."""
        try:
            state = ControlState.decode(data)
        except BadControlError as exc:
            logger.warning("control press by %s refused: %s", user.ref, exc)
            await refuse(replier, messages.CONTROL_BROKEN)
            return
        await self.render(user, replier, state)

    async def command(
        self, user: ChatUser, replier: Replier, replied_to: str | None, command: str, argument: str
    ) -> None:
        """``/key -2`` (``/tempo``, ``/guide``) in reply to a result carrying ``replied_to``
        (the data of one of its buttons)."""
        if replied_to is None:
            await replier.send_text(messages.CONTROL_NEEDS_REPLY)
            return
        try:
            state = ControlState.decode(replied_to)
            options = command_options(state.options, command, argument)
        except BadControlError as exc:
            logger.warning("control command by %s refused: %s", user.ref, exc)
            await replier.send_text(messages.CONTROL_BROKEN)
            return
        except InvalidRenderOptionError as exc:
            await replier.send_text(messages.render_option_refused(exc))
            return
        await self.render(user, replier, replace(state, options=options))

    async def render(self, user: ChatUser, replier: Replier, state: ControlState) -> None:
        """Check the request, say "Changing it...", render, send the files with new
        buttons (a video: find its words or ask for them first)."""
        job = await self._admitted(user, replier, state)
        if job is None:
            return
        assert job.cache_key is not None  # checked by _own_job
        video: VideoRequest | None = None
        if state.video:
            assert self.videos is not None  # checked by _admitted
            planned = await self.videos.plan(user, replier, job, state)
            if not isinstance(planned, VideoRequest):  # asked for the words, or refused
                if planned is not None:
                    await refuse(replier, planned)
                return
            video = planned
        progress = ProgressMessage(replier.send_text, replier.edit_text)
        await progress.show(messages.VIDEO_RENDERING if video else messages.CONTROL_RENDERING)
        request = RenderRequest(
            job.cache_key,
            state.options,
            encoding=SongOrder.of_job(job).encoding(self._encoding),
            max_output_bytes=replier.upload_plan.max_file_bytes,
            min_mp3_bitrate=self._min_mp3_bitrate,
            video=video,
        )
        try:
            result = await self._rendered(user, job, request)
        except RenderAllowanceUsedError as exc:
            logger.info("renders of %s refused: %s", user.ref, exc)
            now = self._clock()
            frees_up = now + timedelta(seconds=exc.retry_after_seconds)
            await progress.final(messages.render_allowance_used(exc.minutes_per_day, frees_up, now))
            return
        except LyricsInputError as exc:  # words kept that this video cannot show
            await progress.final(exc.user_message)
            return
        except SeparationError as exc:
            await progress.final(self._refusal(exc, job, user))
            return
        try:
            await progress.final(self._done(state, result, video))
            await self._send(user, replier, job, state, result, video)
        finally:
            result.release()

    async def _send(
        self,
        user: ChatUser,
        replier: Replier,
        job: JobRecord,
        state: ControlState,
        result: JobResult,
        video: VideoRequest | None,
    ) -> None:
        """The render's files with their buttons; a file the platform refuses as too big
        (it took less than its plan said) is explained, not left in silence."""
        files = outgoing_files(
            job,
            state,
            result,
            controls_available=self.available,
            title=video.title if video else None,  # as its title card names it
            performer=video.artist if video else None,
            video_size=self.video_size,
        )
        try:
            await replier.send_files(files)
        except OutputTooLargeError as exc:
            logger.info(
                "render of job %s for %s refused by the platform: %s", job.id, user.ref, exc
            )
            await replier.send_text(messages.output_too_large(exc))
            return
        logger.info("job %s re-rendered (%s) for %s", job.id, state.options.cache_token(), user.ref)

    async def _admitted(
        self, user: ChatUser, replier: Replier, state: ControlState
    ) -> JobRecord | None:
        """The presser's own finished job, or None once they were told why not (no
        stems kept, no videos here, over the renders' rate, not their song)."""
        if self._backend is None:  # no buttons are shown, but /key may still be typed
            await refuse(replier, RenderUnavailableError().user_message)
            return None
        if state.video and self.videos is None:  # a button from when videos were on
            await refuse(replier, messages.VIDEOS_UNAVAILABLE)
            return None
        if self._limiter is not None and not user.is_admin:
            decision = self._limiter.check(user.ref)
            if not decision.allowed:
                logger.info("renders rate limited for %s", user.ref)
                if decision.notify:
                    await refuse(replier, decision.notice())
                return None
        job = await self.own_job(user, state.token)
        if isinstance(job, str):
            await refuse(replier, job)
            return None
        return job

    @staticmethod
    def _done(state: ControlState, result: JobResult, video: VideoRequest | None) -> str:
        """The last state of the "Changing it..." message, just before the files."""
        change = state.options.title_suffix()
        if video is None:
            return messages.rerendered(change)
        timing = Timing(result.lyrics_timing) if result.lyrics_timing else None
        approximate = timing is not None and timing.is_approximate
        source = video.lyrics_source.value
        return messages.video_ready(change, source, approximate=approximate)

    async def _rendered(self, user: ChatUser, job: JobRecord, request: RenderRequest) -> JobResult:
        """The render from the cache (free), or rendered now and charged to ``user``'s
        daily allowance at what it wrote (a video is not: it has its own rate).

        Raises:
            RenderAllowanceUsedError: not cached, and the allowance has no room for it.
            SeparationError: as the backend's render raises them.
        """
        assert self._backend is not None
        cached = await self._backend.cached_render(request)
        if cached is not None:
            return cached
        charge = None
        if self._allowance is not None and not user.is_admin and request.video is None:
            # Reserved from the song's length first: presses at once cannot all slip in.
            seconds = job.input_duration_seconds / request.options.tempo
            charge = self._allowance.reserve(user.ref, seconds)
        cost = 0.0  # unless it renders: a refusal or a failure costs nothing
        try:
            result = await self._backend.render(request)
            cost = 0.0 if result.cache_hit else result.duration_seconds
            return result
        finally:
            if charge is not None:
                charge.settle(cost)

    @staticmethod
    def _refusal(exc: SeparationError, job: JobRecord, user: ChatUser) -> str:
        """What to tell a presser whose render was refused or failed."""
        if isinstance(exc, PoolError):
            logger.info("render of job %s for %s: %s", job.id, user.ref, exc)
            return exc.user_message
        if isinstance(exc, OutputTooLargeError):
            return messages.output_too_large(exc)
        reference = error_reference()
        logger.error(
            "render of job %s for %s failed [%s]", job.id, user.ref, reference, exc_info=exc
        )
        return messages.internal_error(reference)

    async def apply(
        self,
        separated: JobResult,
        controls: RenderOptions,
        *,
        encoding: EncodingSpec,
        max_output_bytes: int | None,
    ) -> JobResult:
        """A song just separated, rendered with the controls it was sent with
        (``/karaoke key:-2``); the separation's result is released either way.

        Raises:
            PoolError, OutputTooLargeError, AudioExportError: as a render raises them.
        """
        try:
            if self._backend is None:
                raise RenderUnavailableError()
            return await self._backend.render(
                RenderRequest(
                    separated.cache_key,
                    controls,
                    encoding=encoding,
                    max_output_bytes=max_output_bytes,
                    min_mp3_bitrate=self._min_mp3_bitrate,
                    lane=Lane.FIRST_RESULT,  # part of the song: the user waits for it
                )
            )
        finally:
            separated.release()

    async def own_job(self, user: ChatUser, token: str) -> JobRecord | str:
        """The finished job named by ``token`` if it belongs to ``user``, else what to answer.

        A stranger's job, a job that does not exist and one that is not finished all get
        the same sentence (issue 20: two answers told which tokens exist), after the same
        two queries; the log says which it was.
        """
        try:
            presser_id: int | None = (await self._store.users.get(user.platform, user.user_id)).id
        except UserNotFoundError:
            presser_id = None
        try:
            job = await self._store.jobs.get_by_control_token(token)
        except JobNotFoundError:
            logger.warning("%s pressed a control of no job", user.ref)
            return messages.CONTROL_UNKNOWN
        if job.user_id != presser_id:
            logger.warning("%s pressed a control of job %s, not theirs", user.ref, job.id)
            return messages.CONTROL_UNKNOWN
        if job.status != "done" or job.cache_key is None:
            logger.info("%s pressed a control of job %s (%s)", user.ref, job.id, job.status)
            return messages.CONTROL_UNKNOWN
        return job
