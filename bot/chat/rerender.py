"""Karaoke controls pressed: a finished song re-rendered in another key or tempo, or with
a guide vocal, and sent again with its buttons.

The platform adapters turn a button press or a ``/key -2`` reply into :meth:`press` or
:meth:`command`; everything after that is here, once for every platform. A press is
checked like any hostile input: the data must be ours, the job must exist, be finished
and belong to whoever pressed (a forwarded message's buttons refuse a stranger). Renders
cost seconds of ffmpeg, not the model, so they do not count against the song quota;
they have their own, generous rate limit instead. The backend bounds how many ffmpeg
runs happen at once (``separation.cpu_budget``), and nothing here blocks the event loop.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.chat import messages
from bot.chat.controls import BadControlError, Button, ControlState, buttons, command_options
from bot.chat.credits import song_credits
from bot.chat.job_options import job_encoding
from bot.chat.ratelimit import RateLimiter
from bot.chat.types import ChatUser, OutgoingFile, Replier, error_reference
from bot.chat.user_text import clean_name
from separation.encode import EncodingSpec
from separation.errors import (
    InvalidRenderOptionError,
    OutputTooLargeError,
    PoolError,
    RenderUnavailableError,
    SeparationError,
)
from separation.jobs import (
    INSTRUMENTAL,
    JobResult,
    RenderingBackend,
    RenderRequest,
    SeparationBackend,
)
from separation.render_options import RenderOptions
from storage.errors import JobNotFoundError, UserNotFoundError
from storage.records import JobRecord
from storage.store import Store

logger = logging.getLogger(__name__)


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
    ) -> None:
        self._store = store
        self._backend = backend if isinstance(backend, RenderingBackend) else None
        self._encoding = encoding
        self._min_mp3_bitrate = min_mp3_bitrate
        self._limiter = limiter

    @property
    def available(self) -> bool:
        """Whether the backend keeps stems to re-render from (else no buttons are shown)."""
        return self._backend is not None

    def controls(
        self, job: JobRecord, state: ControlState, output: str
    ) -> list[list[Button]] | None:
        """The buttons to put under ``output`` of ``job``: the instrumental of a two-stem
        result only."""
        if not self.available or output != INSTRUMENTAL or job.options.get("stems") == "four":
            return None
        if job.control_token is None:  # a record made without the store: nothing to name
            return None
        return buttons(state)

    async def press(self, user: ChatUser, replier: Replier, data: str) -> None:
        """A button was pressed (the adapter already acknowledged it to the platform)."""
        try:
            state = ControlState.decode(data)
        except BadControlError as exc:
            logger.warning("control press by %s refused: %s", user.ref, exc)
            await replier.send_text(messages.CONTROL_BROKEN)
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
        """Check the request, render it, send the files with new buttons."""
        if self._backend is None:  # no buttons are shown, but /key may still be typed
            await replier.send_text(RenderUnavailableError().user_message)
            return
        if self._limiter is not None and not user.is_admin:
            decision = self._limiter.check(user.ref)
            if not decision.allowed:
                logger.info("renders rate limited for %s", user.ref)
                if decision.notify:
                    await replier.send_text(decision.notice())
                return
        job = await self._own_job(user, state.token)
        if isinstance(job, str):
            await replier.send_text(job)
            return
        assert job.cache_key is not None  # checked by _own_job
        try:
            result = await self._backend.render(
                RenderRequest(
                    job.cache_key,
                    state.options,
                    encoding=job_encoding(job, self._encoding),
                    max_output_bytes=replier.upload_plan.max_file_bytes,
                    min_mp3_bitrate=self._min_mp3_bitrate,
                )
            )
        except PoolError as exc:
            logger.info("render of job %s for %s: %s", job.id, user.ref, exc)
            await replier.send_text(exc.user_message)
            return
        except OutputTooLargeError as exc:
            await replier.send_text(messages.output_too_large(exc))
            return
        except SeparationError:
            reference = error_reference()
            logger.exception("render of job %s for %s failed [%s]", job.id, user.ref, reference)
            await replier.send_text(messages.internal_error(reference))
            return
        try:
            await replier.send_files(self.outgoing_files(job, state, result))
        finally:
            result.release()
        logger.info("job %s re-rendered (%s) for %s", job.id, state.options.cache_token(), user.ref)

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
                )
            )
        finally:
            separated.release()

    async def _own_job(self, user: ChatUser, token: str) -> JobRecord | str:
        """The finished job named by ``token`` if it belongs to ``user``, else what to answer.

        A stranger's job, a job that does not exist and one that is not finished all get
        the same sentence (issue 20: two answers told which tokens exist), after the same
        two queries; the log says which it was.
        """
        try:
            presser_id: int | None = (await self._store.get_user(user.platform, user.user_id)).id
        except UserNotFoundError:
            presser_id = None
        try:
            job = await self._store.get_job_by_control_token(token)
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

    def outgoing_files(
        self,
        job: JobRecord,
        state: ControlState,
        result: JobResult,
        *,
        title: str | None = None,
        performer: str | None = None,
    ) -> list[OutgoingFile]:
        """``result``'s files as the chat sends them: named after the song (``title``, or
        its tags and file name) and what ``state`` changed, with the instrumental's
        buttons."""
        if title is None:
            title, performer = song_credits(result.input_tags, file_name=job.original_filename)
        # Cleaned again here, the one builder of sent files: whatever named the song, no
        # platform gets a name with invisible characters or of any length (issue 20).
        title = clean_name(title) or messages.UNTITLED_SONG
        performer = clean_name(performer) or None
        change = state.options.title_suffix()
        return [
            OutgoingFile(
                path=path,
                filename=messages.result_title(title, name, change) + path.suffix,
                title=messages.result_title(title, name, change),
                performer=performer,
                duration_seconds=result.duration_seconds,
                controls=self.controls(job, state, name),
            )
            for name, path in result.outputs.items()
        ]
