"""Songs a previous process accepted and left without a job, at the next start (issue 20):
resumed once, even when Telegram delivers the same message again (a crash between the
record and the confirmation of the update)."""

from __future__ import annotations

import asyncio
import dataclasses

from bot.chat.conversation import messages
from bot.chat.telegram.adapter import TelegramAdapter
from bot.process.app import build_app
from bot.process.wiring import flow_config, open_store
from storage.intake import IntakeRequest
from storage.records import ChatRef
from tests.support.bot_app import make_pool
from tests.support.fake_bot_api import FakeBotApi
from tests.support.telegram_bot import USER_ID, make_settings


async def test_a_song_delivered_again_after_the_crash_is_run_once(
    tmp_path, model_repo, telegram_songs
):
    api = FakeBotApi()
    await api.start()
    settings = make_settings(tmp_path, api, model_repo)
    media = api.audio_attachment(telegram_songs["clip.mp3"])
    message = api.message(chat_id=USER_ID, user_id=USER_ID, **media)
    store = await open_store(settings)  # the previous process recorded the song, then died
    await store.intake.accept(
        "telegram",
        str(USER_ID),
        "Ann",
        IntakeRequest(
            chat=ChatRef(chat_id=str(USER_ID), message_id=str(message["message_id"])),
            file_ref=media["audio"]["file_id"],
            options={"stems": "two"},
        ),
    )
    await store.close()
    api.push_update({"message": message})  # ... before Telegram had its update confirmed
    api.hold_files()  # the resumed song stays on record until the update was handled

    config = dataclasses.replace(flow_config(settings), progress_interval_seconds=0.2)
    app = await build_app(
        settings,
        backend=make_pool(settings),
        config=config,
        adapter_factories=[lambda s, flow: TelegramAdapter(s.telegram, flow)],
    )
    try:
        await app.start()
        await api.wait_for(lambda a: a.unconfirmed_updates == 0)
        api.release_files()
        await api.wait_for(lambda a: messages.DONE in a.texts_in_chat(USER_ID), within=60)
        await api.wait_for(lambda a: len(a.calls_to("sendAudio")) == 2, within=30)
        adapter = app.adapters[0]
        await asyncio.wait_for(adapter.wait_until_idle(), 30)
        stats = await app.store.stats.collect()
        assert sum(stats.jobs_by_status.values()) == 1
        assert len(api.calls_to("sendAudio")) == 2
        assert await app.store.intake.pending() == []
    finally:
        api.release_files()
        await app.stop(5)
        await api.stop()
