"""After a restart: unfinished jobs are resumed and delivered, or reported and refunded."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bot.process.wiring import open_store, quota_limits
from storage.order import StoredOrder
from storage.records import ChatRef, JobRequest
from tests.support.fake_bot_api import TOKEN, FakeBotApi
from tests.support.telegram_bot import make_settings, restart_bot

SURVIVOR_CHAT, LOST_CHAT = 6001, 6002


async def _leave_job(
    store,
    settings,
    user_id: int,
    song: bytes,
    *,
    keep_input: bool,
    progress_message: str | None = None,
) -> int:
    user = await store.users.upsert("telegram", str(user_id), "Ann")
    saved = await store.files.save_upload(song, max_bytes=10**8)
    job = await store.jobs.reserve(
        user,
        JobRequest(
            input_sha256=saved.sha256,
            input_duration_seconds=6.0,
            input_size_bytes=saved.size_bytes,
            model="tiny",
            order=StoredOrder(stems="two", output_format="mp3", progress_message=progress_message),
            original_filename="Old Song.mp3",
            input_path=saved.path,
            chat=ChatRef(chat_id=str(user_id), message_id="77"),
        ),
        quota_limits(settings, "telegram"),
    )
    await store.jobs.mark_running(job.id)
    if not keep_input:
        saved.path.unlink()
    return job.id


async def test_unfinished_jobs_are_resumed_or_reported(tmp_path, model_repo, telegram_songs):
    api = FakeBotApi()
    await api.start()
    settings = make_settings(tmp_path, api, model_repo)
    song = telegram_songs["clip.mp3"].read_bytes()
    store = await open_store(settings)  # the "previous process"
    survivor = await _leave_job(store, settings, SURVIVOR_CHAT, song, keep_input=True)
    lost = await _leave_job(store, settings, LOST_CHAT, song, keep_input=False)
    await store.close()

    app = await restart_bot(settings)
    try:
        await api.wait_for(
            lambda a: any(t.startswith("Done!") for t in a.texts_in_chat(SURVIVOR_CHAT)), within=60
        )
        await api.wait_for(
            lambda a: (
                sum(c.params["chat_id"] == str(SURVIVOR_CHAT) for c in a.calls_to("sendAudio")) == 2
            ),
            within=30,
        )
        await api.wait_for(
            lambda a: any("restarted and lost your song" in t for t in a.texts_in_chat(LOST_CHAT)),
            within=30,
        )
        uploads = [
            c for c in api.calls_to("sendAudio") if c.params["chat_id"] == str(SURVIVOR_CHAT)
        ]
        assert [c.files["audio"][0] for c in uploads] == [
            "Old Song (Instrumental).mp3",
            "Old Song (Vocals).mp3",
        ]
        assert all(c.params["reply_parameters"]["message_id"] == 77 for c in uploads)
        deadline = time.monotonic() + 30  # recorded just after the files are sent
        while (await app.store.jobs.get(survivor)).status != "done":
            assert time.monotonic() < deadline, "the resumed job was never recorded as done"
            await asyncio.sleep(0.05)
        lost_job = await app.store.jobs.get(lost)
        assert lost_job.status == "failed"
        user = await app.store.users.get("telegram", str(LOST_CHAT))
        status = await app.store.quotas.status(user, quota_limits(settings, "telegram"))
        assert status.songs_used == 0
    finally:
        await app.stop(5)
        await api.stop()


async def test_after_a_crash_the_song_goes_on_in_its_own_progress_message(
    tmp_path, model_repo, telegram_songs
):
    api = FakeBotApi()
    await api.start()
    settings = make_settings(tmp_path, api, model_repo)
    # The previous process showed "Separating... 37%" in its progress message, then died.
    url = f"{api.base_url}{TOKEN}/sendMessage"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"chat_id": SURVIVOR_CHAT, "text": "Separating... 37%"}) as sent,
    ):
        progress_id = (await sent.json())["result"]["message_id"]
    store = await open_store(settings)
    await _leave_job(
        store,
        settings,
        SURVIVOR_CHAT,
        telegram_songs["clip.mp3"].read_bytes(),
        keep_input=True,
        progress_message=str(progress_id),
    )
    await store.close()
    before = len(api.calls)

    app = await restart_bot(settings)
    try:
        await api.wait_for(lambda a: len(a.calls_to("sendAudio")) == 2, within=60)
    finally:
        await app.stop(5)
        await api.stop()
    after = [c for c in api.calls[before:] if c.method in ("sendMessage", "editMessageText")]
    assert [c.method for c in after if c.method == "sendMessage"] == []  # no second message
    assert {int(c.params["message_id"]) for c in after} == {progress_id}
    assert after[-1].params["text"] == "Done! Instrumental first, then the vocals."
