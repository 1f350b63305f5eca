"""Discord next to Telegram in one process: one store, one pool, both platforms served."""

from __future__ import annotations

import asyncio

from bot.chat.conversation.messages import DONE
from bot.chat.telegram.adapter import TelegramAdapter
from tests.support.discord_bot import SONG_CHANNEL, start_discord_app
from tests.support.discord_bot import USER_ID as DISCORD_USER
from tests.support.fake_bot_api import FakeBotApi
from tests.support.telegram_bot import USER_ID as TELEGRAM_USER
from tests.support.telegram_bot import make_settings


async def test_a_song_from_each_platform_at_the_same_time_both_complete(
    discord_api, tmp_path, model_repo, telegram_songs
):
    telegram_api = FakeBotApi()
    await telegram_api.start()
    settings = make_settings(
        tmp_path,
        telegram_api,
        model_repo,
        discord={"enabled": True, "token": discord_api.token, "song_channel_ids": [SONG_CHANNEL]},
    )
    app = await start_discord_app(
        discord_api,
        settings,
        extra_factories=[lambda s, flow: TelegramAdapter(s.telegram, flow)],
    )
    try:
        media = telegram_api.audio_attachment(telegram_songs["clip.mp3"], title="From Telegram")
        telegram_api.push_update(
            {"message": telegram_api.message(chat_id=TELEGRAM_USER, user_id=TELEGRAM_USER, **media)}
        )
        discord = next(adapter for adapter in app.adapters if adapter.platform == "discord")
        payload = discord_api.message(
            channel_id=SONG_CHANNEL,
            author_id=DISCORD_USER,
            guild_id=None,
            attachments=[
                discord_api.attachment(telegram_songs["clip.mp3"], channel_id=SONG_CHANNEL)
            ],
        )
        discord.client._connection.parse_message_create(payload)
        await telegram_api.wait_for(lambda api: api.texts_in_chat(TELEGRAM_USER)[-1:] == [DONE], 60)
        await discord_api.wait_for(lambda api: api.texts(SONG_CHANNEL)[-1:] == [DONE], 60)
        for _ in range(200):  # "Done!" comes first; the job is recorded once its files are sent
            if (await app.store.stats.collect()).jobs_by_status.get("done") == 2:
                break
            await asyncio.sleep(0.05)
        assert (await app.store.stats.collect()).jobs_by_status["done"] == 2
    finally:
        await app.stop(grace_seconds=5)
        await telegram_api.stop()
    assert len(telegram_api.calls_to("sendAudio")) == 2
    [delivery] = discord_api.uploads(SONG_CHANNEL)
    assert delivery.file_names == ["clip (Instrumental).mp3", "clip (Vocals).mp3"]
    # Both were in flight together: Discord's song arrived before Telegram's was delivered.
    assert discord_api.calls_to("download")[0].at < telegram_api.calls_to("sendAudio")[0].at
