"""Receiving a song: refusing early, downloading it, checking its header, reserving its job.

Part of :class:`bot.chat.conversation.flow.ChatFlow` (see ``flow_core``). Uploads are
hostile until proven otherwise: downloads and header checks run a bounded number at a
time across all users (the rest wait in line, off the event loop); the upload is hashed
once, while it is saved, and its header read once, and both travel with the job (the
backend neither rehashes nor probes again); a file whose header gives no length is
measured before it is admitted. Its order (``bot.chat.conversation.order``) is reserved
with its job, typed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.chat.conversation import intake as intake_journal
from bot.chat.conversation import messages
from bot.chat.conversation.credits import song_credits
from bot.chat.conversation.flow_core import FLOW_LOGGER
from bot.chat.conversation.following import JobFollowing
from bot.chat.conversation.link_source import link_chunks, link_max_seconds, source_keys
from bot.chat.conversation.lyrics import users_words
from bot.chat.conversation.order import ReceivedSong, SongOrder
from bot.chat.conversation.progress import ProgressMessage
from bot.chat.conversation.types import ChatUser, Conversation, Replier, SongUpload
from bot.links.errors import LinkError
from bot.links.fetch import FetchedLink
from separation.audio.decode import inspect_audio, measure_duration
from separation.audio.ffmpeg import ProbeResult
from separation.errors import AudioInputError, LyricsInputError
from separation.lyrics.model import LyricsSource
from storage.errors import (
    IntakeExistsError,
    QuotaRefusedError,
    StorageError,
    UploadTooLargeError,
)
from storage.files import ByteSource, SavedUpload
from storage.intake import IntakeRecord
from storage.records import ChatRef, JobRecord, JobRequest, QuotaLimits, UserRecord

logger = logging.getLogger(FLOW_LOGGER)


@dataclass(frozen=True)
class Arrival:
    """One song on its way in, with everything its handling needs to reach its user."""

    user: ChatUser
    conversation: Conversation
    replier: Replier
    upload: SongUpload
    order: SongOrder
    progress: ProgressMessage
    limits: QuotaLimits
    """The user's platform's default limits, looked up once for the whole song (the store
    applies the user's own grants on top)."""
    intake: IntakeRecord | None
    """Its record as an accepted song (``bot.chat.conversation.intake``), if it has one."""
    resumed: bool = False
    """Fetched again after a restart: a failed download means the song was lost."""


class SongReceiving(JobFollowing):
    """From an accepted song to its job: refusals, download, header check, reservation."""

    async def _journal(
        self,
        user: ChatUser,
        conversation: Conversation,
        upload: SongUpload,
        order: SongOrder,
    ) -> IntakeRecord | None:
        """Record an accepted song (``bot.chat.conversation.intake``); None when it cannot be.

        Raises:
            IntakeExistsError: the platform delivered this message again.
        """
        try:
            request = intake_journal.intake_request(
                conversation, upload, order, holder=self._config.frontend_id
            )
            if request is None:
                return None
            return await self._store.intake.accept(
                user.platform, user.user_id, user.display_name, request
            )
        except IntakeExistsError:
            raise
        except Exception as exc:  # the song goes on; only a crash before its job loses it
            logger.warning("could not record the song of %s as accepted: %s", user.ref, exc)
            return None

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
            await self._store.intake.note_progress(intake.id, ref)
        except StorageError as exc:  # a restart then tells the user in a new message
            logger.warning("accepted song %s: could not record its message: %s", intake.id, exc)

    async def _run_song(self, song: Arrival) -> JobRecord | None:
        """The song's handling after it was accepted; its record goes when it is refused
        (reserving its job removes the record in the same transaction)."""
        job = await self._receive(song)
        if job is None and song.intake is not None:
            await self._forget(song.intake.id)
        return job

    async def _receive(self, song: Arrival) -> JobRecord | None:
        """Refuse early, download, check and run the song (see ``ChatFlow.handle_song``)."""
        user, progress = song.user, song.progress
        try:
            received = await self._download(song)
        except UploadTooLargeError as exc:
            await progress.final(messages.too_big_to_download(None, exc.max_bytes))
            return None
        except QuotaRefusedError as exc:
            await progress.final(messages.quota_refused(exc, now=self._clock()))
            return None
        except LinkError as exc:
            logger.info("refused the link of %s: %s", user.ref, exc)
            self._record(user.platform, "refused", f"link_{exc.kind}")
            await progress.final(messages.link_refused(exc.kind, exc.site))
            return None
        except Exception as exc:
            if not song.resumed:
                await self._internal_error(progress, exc, user, job_id=None)
                return None
            logger.info("accepted song of %s: fetching it again failed: %s", user.ref, exc)
            await progress.final(messages.LOST_BEFORE_SAVED)
            return None
        if received is None:
            return None
        record, saved, upload = received
        return await self._check_and_run(dataclasses.replace(song, upload=upload), record, saved)

    async def _download(self, song: Arrival) -> tuple[UserRecord, SavedUpload, SongUpload] | None:
        """The user's record, the saved upload (hashed as it is written) and the upload
        (with a link's title and artist from its site), or None when the song was
        refused before or instead of its download (the user was told).

        Raises:
            UploadTooLargeError: more arrived than the limit allows.
            QuotaRefusedError: as the store raises it.
            LinkError: a link was refused or could not be fetched.
        """
        user, progress, upload = song.user, song.progress, song.upload
        if song.intake is not None:  # recorded as seen when the song was accepted
            record = song.intake.user
        else:
            record = await self._store.users.upsert(user.platform, user.user_id, user.display_name)
        # Refuse what can be refused without the file before downloading it, at once.
        if (refusal := await self._refusal_before_download(user, record, song.limits)) is not None:
            await progress.final(refusal)
            return None
        max_download = self._config.limits.max_input_bytes
        if upload.link is None:  # a platform's own cap (Telegram's 20 MB) binds its files
            max_download = min(song.replier.upload_plan.max_download_bytes, max_download)
        if upload.declared_size is not None and upload.declared_size > max_download:
            logger.info(
                "refused %s: declared size %d > %d", user.ref, upload.declared_size, max_download
            )
            await progress.final(messages.too_big_to_download(upload.declared_size, max_download))
            return None
        await progress.show(messages.DOWNLOADING)
        await self._note_progress(song.intake, song.replier, progress)
        fetched: list[FetchedLink] = []
        async with self._download_slots:
            source = (
                upload.stream()
                if upload.link is None
                else (await self._link_source(song, record, fetched.append))
            )
            saved = await self._store.files.save_upload(source, max_bytes=max_download)
        if fetched and upload.link is not None:
            await self._store.files.keep_source(saved.path, source_keys(upload.link, fetched[0]))
            upload = dataclasses.replace(
                upload,
                title_hint=fetched[0].title or upload.title_hint,
                performer_hint=fetched[0].artist or upload.performer_hint,
            )
        return record, saved, upload

    async def _link_source(
        self, song: Arrival, record: UserRecord, on_fetched: Callable[[FetchedLink], None]
    ) -> ByteSource:
        """A link's bytes (``bot.chat.conversation.link_source``): the only way a link's
        song differs from an upload on its way in.

        Raises:
            LinkError: links are turned off here (``unsupported_site``).
        """
        assert song.upload.link is not None
        if self._links is None:  # resumed after links were turned off
            raise LinkError("unsupported_site", detail="links are turned off")
        status = await self._store.quotas.status(record, song.limits)
        return link_chunks(
            self._links,
            song.upload.link,
            self._store.files,
            max_duration_seconds=link_max_seconds(self._config.limits.max_duration_seconds, status),
            on_fetched=on_fetched,
        )

    async def _refusal_before_download(
        self, user: ChatUser, record: UserRecord, limits: QuotaLimits
    ) -> str | None:
        """Why the user's next song would be refused whatever its length, or None.

        The store decides (``store.quotas.refusal``), in the order and with the "frees
        at" times the reservation uses, so that the user is told before a byte is
        downloaded; whether the song's minutes fit is known after the download
        (``reserve`` checks everything again, atomically).
        """
        refusal = await self._store.quotas.refusal(record, limits)
        if refusal is None:
            return None
        logger.info("refused %s before downloading: %s", user.ref, type(refusal).__name__)
        if self._metrics is not None:
            self._metrics.quota_refused(type(refusal).__name__)
        return messages.quota_refused(refusal, now=self._clock())

    async def _check_and_run(
        self, song: Arrival, record: UserRecord, saved: SavedUpload
    ) -> JobRecord | None:
        """Check the saved upload's header, reserve its job and run it."""
        user, progress = song.user, song.progress
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
        try:
            job = await self._store.jobs.reserve(
                record,
                self._job_request(song, saved, info),
                song.limits,
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
        await self._keep_lyrics(job, song.upload)
        upload = song.upload
        title, performer = song_credits(
            info.tags,
            file_name=upload.file_name,
            title_hint=upload.title_hint,
            performer_hint=upload.performer_hint,
            fallback_title=upload.fallback_title,
        )
        received = ReceivedSong(info, title, performer)
        return await self.run_job(
            user, job, song.replier, progress=progress, received=received, limits=song.limits
        )

    async def _keep_lyrics(self, job: JobRecord, upload: SongUpload) -> None:
        """Keep the words sent with the song (checked when it was accepted) with its job,
        for its karaoke videos. A failure costs the song nothing: a video asks again."""
        if upload.lyrics is None:
            return
        try:
            await self._store.lyrics.put(
                job.id, users_words(upload.lyrics), LyricsSource.USER.value
            )
        except (StorageError, LyricsInputError) as exc:
            logger.warning("job %s: could not keep the lyrics sent with it: %s", job.id, exc)

    def _job_request(self, song: Arrival, saved: SavedUpload, info: ProbeResult) -> JobRequest:
        """The job to reserve: the upload's facts as saved and checked, and its order with
        the format resolved (a later change of the server's default does not change what
        this song is delivered as) and its progress message (:meth:`_progress_ref`)."""
        order = dataclasses.replace(
            song.order,
            output_format=song.order.encoding(self._config.encoding).format,
            progress_message=self._progress_ref(song.replier, song.progress, song.intake),
        )
        conversation = song.conversation
        return JobRequest(
            input_sha256=saved.sha256,
            input_duration_seconds=info.duration_seconds or 0.0,
            input_size_bytes=saved.size_bytes,
            model=self._config.model_name,
            order=order.stored(self._config.separation_settings),
            original_filename=(song.upload.file_name or "")[:200] or None,
            input_path=saved.path,
            chat=ChatRef(
                chat_id=conversation.chat_id,
                guild_id=conversation.guild_id,
                channel_id=conversation.channel_id,
                message_id=conversation.message_id,
            ),
            intake_id=song.intake.id if song.intake is not None else None,
        )

    @staticmethod
    def _progress_ref(
        replier: Replier, progress: ProgressMessage, intake: IntakeRecord | None
    ) -> str | None:
        """The progress message's id, kept with the job so that after a crash and restart
        the resumed job goes on in the same message instead of leaving it at "37%"
        (a song resumed from its intake record goes on in the message on record)."""
        if intake is not None and intake.progress_message is not None:
            return intake.progress_message
        if progress.handle is None:
            return None
        return replier.message_ref(progress.handle)

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
