"""The chat flow, written once for every platform.

A song arrives -> it is recorded as accepted before the platform considers the message
delivered (``bot.chat.conversation.intake``: a crash before its job exists cannot lose it
silently) -> what can be refused without the file (a ban, no songs left, too many in
progress) is refused at once -> it is downloaded (with a byte limit enforced while
streaming, and hashed as it is written) -> its header is checked -> quota is reserved
-> the job is submitted to the separation backend -> one progress message follows it
(kept with the job, so a restart goes on in it) -> "Done!" is shown and the files are
delivered -> the job is recorded.

What the user asked for travels as one typed order (``bot.chat.conversation.order``),
kept with the job. Uploads are hostile until proven otherwise (``receiving``); the
charge follows the *decoded* length, reported by the backend before the model runs
(``Decoded``), so a header that lies neither dodges the quota nor the per-song limit.
Any failure on the way refunds the quota (the store does that when a job fails or is
cancelled) and is explained in one friendly sentence; unexpected failures get a short
reference id that is also in the log.

Adapters call :class:`ChatFlow` with platform-neutral values
(``bot.chat.conversation.types``); the flow never sees a Telegram or Discord object. It is
written in parts, one module per job: ``flow_core`` (settings and shared state),
``following`` (a submitted job to its delivery), ``receiving`` (a song to its job), and
here the entry points adapters call and the commands. Karaoke videos (issue 24) enter
here too, by lyrics sent in reply or ``/video``; a button asking for one is a karaoke
control like the others (``rerender``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from bot.chat.conversation import intake as intake_journal
from bot.chat.conversation import messages
from bot.chat.conversation.controls import ControlState
from bot.chat.conversation.credits import display_title
from bot.chat.conversation.flow_core import FLOW_LOGGER, FlowConfig, utc_now
from bot.chat.conversation.lyrics import users_words
from bot.chat.conversation.order import SongOrder
from bot.chat.conversation.ratelimit import RateDecision
from bot.chat.conversation.receiving import Arrival, SongReceiving
from bot.chat.conversation.rerender import refuse
from bot.chat.conversation.types import (
    ByteStream,
    ChatUser,
    Conversation,
    LyricsUpload,
    Replier,
    SongUpload,
)
from separation.audio.encode import OutputFormat, StemMode
from separation.audio.render_options import RenderOptions
from separation.errors import LyricsInputError
from storage.errors import IntakeExistsError, StorageError, UserNotFoundError
from storage.intake import IntakeRecord
from storage.records import JobRecord

__all__ = ["ChatFlow", "FlowConfig", "utc_now"]

logger = logging.getLogger(FLOW_LOGGER)


async def _nothing_more() -> JobRecord | None:
    """The handling of a song that another delivery of its message handles already."""
    return None


class ChatFlow(SongReceiving):
    """Receive a song, keep the user informed, deliver the results, record everything."""

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

        Adapters await this in the platform's handler itself, before the platform may
        consider the message delivered, so that a crash from then on cannot lose the song
        silently (``bot.chat.conversation.intake``). A song that cannot be recorded (no
        file reference, a database error) still goes on, as it did before there was a
        record. The user's wishes become the song's typed order here, once. A song sent
        as a link (``link_source.link_upload``) while links are turned off is answered in
        one sentence, and nothing is recorded. Lyrics sent with the song
        (``upload.lyrics``) that cannot be used refuse it in one sentence.
        """
        if upload.link is not None and self._links is None:
            return self._say(replier, messages.LINKS_TURNED_OFF)
        order = SongOrder(stems, output_format, controls or RenderOptions())
        if upload.lyrics is not None:  # refused before the song starts: it costs nothing
            try:
                words = users_words(upload.lyrics)
            except LyricsInputError as exc:
                await replier.send_text(exc.user_message)
                return _nothing_more()
            upload = dataclasses.replace(upload, lyrics=LyricsUpload(words))
        try:
            intake = await self._journal(user, conversation, upload, order)
        except IntakeExistsError as exc:  # this message's song is under way (or resumed)
            logger.info(
                "song of %s delivered again; already accepted as %s", user.ref, exc.intake_id
            )
            return _nothing_more()
        progress = self._progress_message(replier)
        limits = self._config.quota_limits(user.platform)  # once per song
        song = Arrival(user, conversation, replier, upload, order, progress, limits, intake)
        return self._run_song(song)

    @staticmethod
    async def _say(replier: Replier, text: str) -> JobRecord | None:
        await replier.send_text(text)
        return None

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

        It is fetched again through ``stream`` (a link: from its link) and run as the
        user asked, in its own progress message when that message's id was recorded.
        When it cannot be fetched again (the platform gives no way to, it was accepted
        longer than :data:`bot.chat.conversation.intake.MAX_AGE` ago, or the download
        fails) the user is told in one sentence that it was lost; nothing is charged.
        """
        progress = self._progress_message(replier)
        ref = intake.progress_message
        if ref is not None and (handle := replier.message_handle(ref)) is not None:
            progress.continue_in(handle)  # end the "Downloading..." the crash left
        lost = stream is None and intake_journal.link_of(intake) is None
        if lost or self._clock() - intake.accepted_at > intake_journal.MAX_AGE:
            logger.info("accepted song %s of %s: cannot fetch it again", intake.id, user.ref)
            try:
                await progress.final(messages.LOST_BEFORE_SAVED)  # told first: never silence
            except Exception as exc:  # e.g. the user blocked the bot: no use trying again
                logger.warning("accepted song %s: could not tell its user: %s", intake.id, exc)
            await self._forget(intake.id)
            return None
        logger.info("accepted song %s of %s: fetching it again", intake.id, user.ref)
        song = Arrival(
            user,
            intake_journal.conversation_of(intake, user),
            replier,
            intake_journal.upload_of(intake, stream),
            intake_journal.order_of(intake),
            progress,
            self._config.quota_limits(user.platform),
            intake,
            resumed=True,
        )
        return await self._run_song(song)

    # -- karaoke videos -------------------------------------------------------------------
    async def lyrics_reply(
        self,
        user: ChatUser,
        replier: Replier,
        token: str,
        lyrics: LyricsUpload,
        *,
        options: RenderOptions | None = None,
    ) -> None:
        """Lyrics sent in reply to a result or to the bot's question (``token``: from the
        replied-to message's buttons): kept for that song, then its video is made.

        ``options``: the key, tempo and guide vocal of the replied-to result (the song as
        it was sent when None). The owner is checked before anything is read or kept.
        """
        job = await self.rerender.own_job(user, token)
        if isinstance(job, str):
            await refuse(replier, job)
            return
        videos = self.rerender.videos
        if videos is None or self.rerender.video_size is None:
            await replier.send_text(messages.VIDEOS_UNAVAILABLE)
            return
        try:
            await videos.finder.keep_users(job, lyrics)
        except LyricsInputError as exc:
            await replier.send_text(exc.user_message)
            return
        controls = options if options is not None else SongOrder.of_job(job).controls
        await self.rerender.render(user, replier, ControlState(token, controls, video=True))

    async def video_command(
        self,
        user: ChatUser,
        replier: Replier,
        token: str | None,
        *,
        options: RenderOptions | None = None,
    ) -> None:
        """``/video`` in reply to a result (``token`` from its buttons, ``options`` its
        state), or, with ``token`` None, of the user's latest song as it was sent."""
        if token is None:
            latest = await self._latest_song(user, replier)
            if latest is None:
                return
            token, controls = latest
        else:
            controls = options or RenderOptions()
        await self.rerender.render(user, replier, ControlState(token, controls, video=True))

    async def lyrics_for_latest(
        self, user: ChatUser, replier: Replier, lyrics: LyricsUpload
    ) -> None:
        """Lyrics for the user's latest finished song (Discord's ``/video lyrics:`` and
        ``/video text:``): kept for it, then its video is made, as :meth:`lyrics_reply`."""
        latest = await self._latest_song(user, replier)
        if latest is not None:
            token, controls = latest
            await self.lyrics_reply(user, replier, token, lyrics, options=controls)

    async def _latest_song(
        self, user: ChatUser, replier: Replier
    ) -> tuple[str, RenderOptions] | None:
        """The control token and first controls of the user's latest finished song; None
        (and the user told they need a song first) when they have none."""
        latest = await self._latest_done(user)
        if latest is None:
            await replier.send_text(messages.VIDEO_NEEDS_A_SONG)
        return latest

    async def _latest_done(self, user: ChatUser) -> tuple[str, RenderOptions] | None:
        """The control token and first controls of the user's latest finished song."""
        try:
            record = await self._store.users.get(user.platform, user.user_id)
        except UserNotFoundError:
            return None
        job = await self._store.jobs.latest_done(record)
        if job is None or job.control_token is None:
            return None
        return job.control_token, SongOrder.of_job(job).controls

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
        record = await self._store.users.upsert(user.platform, user.user_id, user.display_name)
        status = await self._store.quotas.status(record, self._config.quota_limits(user.platform))
        return messages.quota_summary(status, now=self._clock())

    async def status(self, user: ChatUser) -> str:
        """/status: the queue, the user's songs in progress and their quota."""
        record = await self._store.users.upsert(user.platform, user.user_id, user.display_name)
        jobs = await self._store.jobs.active(record)
        songs = [(display_title(job.original_filename), job.status.value) for job in jobs]
        status = await self._store.quotas.status(record, self._config.quota_limits(user.platform))
        quota = messages.quota_summary(status, now=self._clock())
        return messages.status_summary(self._backend.queue_length, songs, quota)

    def help(self, *, commands: Sequence[tuple[str, str]], platform_note: str = "") -> str:
        """The help text with the platform's own command list."""
        return messages.help_text(
            max_minutes=self._config.limits.max_duration_seconds / 60,
            retention_hours=self._config.retention_hours,
            commands=commands,
            platform_note=platform_note,
            links=self._links is not None,
        )

    # -- admin ------------------------------------------------------------------------------
    async def admin_grant(self, target: str, songs: int | None, minutes: float | None) -> str:
        """Grant a user (created if they never wrote: an admin may grant a friend first)."""
        user = await self._store.users.find_or_create(target)
        updated = await self._store.users.grant(
            user, songs_per_day=songs, audio_minutes_per_day=minutes
        )
        return messages.admin_granted(
            updated.ref, updated.songs_per_day_override, updated.audio_minutes_per_day_override
        )

    async def admin_ban(self, target: str, banned: bool = True) -> str:
        """Ban (an abuser may be banned before they write) or unban a known user."""
        if banned:
            user = await self._store.users.find_or_create(target)
        else:
            user = await self._store.users.find_chat_user(target)
        updated = await self._store.users.set_banned(user, banned)
        return messages.admin_banned(updated.ref, updated.is_banned)

    async def admin_stats(self) -> str:
        return messages.describe_stats(await self._store.stats.collect())

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
