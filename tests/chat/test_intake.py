"""The chat flow's intake records (``bot.chat.conversation.intake``): a song is on record from the
moment it is accepted until its job exists or it gets a final answer, and a song a
restart finds on record is fetched again or reported lost in one sentence."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

from bot.chat.conversation import messages
from bot.chat.conversation.flow import ChatFlow
from storage.intake import IntakeRequest
from storage.records import ChatRef, utc_now
from tests.support.chat import CHAT, USER, RecordingReplier, upload_of

FILE_REF = "file-id-1"


async def test_a_song_is_on_record_until_its_job_exists(flow: ChatFlow, song):
    replier = RecordingReplier()
    downloading, go_on = asyncio.Event(), asyncio.Event()
    data = song.read_bytes()

    async def held_download() -> AsyncIterator[bytes]:
        downloading.set()
        await go_on.wait()
        yield data

    upload = dataclasses.replace(upload_of(song), stream=held_download, file_ref=FILE_REF)
    handling = await flow.accept_song(USER, CHAT, replier, upload, stems="four")
    [accepted] = await flow._store.intake.pending()  # before the handling even started
    assert (accepted.file_ref, accepted.options["stems"]) == (FILE_REF, "four")
    task = asyncio.create_task(handling)
    await downloading.wait()
    [downloading_record] = await flow._store.intake.pending()
    assert downloading_record.progress_message == "1"  # "Downloading your song..."
    go_on.set()
    job = await task
    assert job is not None and job.status == "done"
    assert job.order.stems == "four"
    assert await flow._store.intake.pending() == []


async def test_a_refused_song_leaves_no_record(flow: ChatFlow, song):
    user = await flow._store.users.upsert("telegram", USER.user_id, USER.display_name)
    await flow._store.users.set_banned(user, True)
    replier = RecordingReplier()
    upload = dataclasses.replace(upload_of(song), file_ref=FILE_REF)
    assert await flow.handle_song(USER, CHAT, replier, upload) is None
    assert replier.texts == [messages.BANNED]
    assert await flow._store.intake.pending() == []


async def _left_by_a_crash(chat_flow: ChatFlow, *, age: timedelta) -> None:
    """A song the previous process accepted and showed "Downloading..." for (message 1)."""
    store = chat_flow._store
    accepted = await store.intake.accept(
        USER.platform,
        USER.user_id,
        USER.display_name,
        IntakeRequest(chat=ChatRef(chat_id="1", message_id="10"), file_ref=FILE_REF),
        now=utc_now() - age,
    )
    await store.intake.note_progress(accepted.id, "1")


async def _failing_download() -> AsyncIterator[bytes]:
    raise ConnectionError("Bad Request: wrong file identifier")
    yield b""  # pragma: no cover - makes this an async generator


async def test_a_song_that_cannot_be_fetched_again_is_reported_lost(
    flow: ChatFlow,
    song,
):
    cases = [(timedelta(minutes=5), _failing_download), (timedelta(days=2), upload_of(song).stream)]
    for age, stream in cases:
        await _left_by_a_crash(flow, age=age)
        [accepted] = await flow._store.intake.pending()
        replier = RecordingReplier()
        assert await flow.resume_song(USER, accepted, replier, stream) is None
        assert replier.texts[-1] == messages.LOST_BEFORE_SAVED
        assert await flow._store.intake.pending() == []
    user = await flow._store.users.get("telegram", USER.user_id)
    status = await flow._store.quotas.status(user, flow.config.quota_limits("telegram"))
    assert status.songs_used == 0
