"""Discord songs accepted before a crash and left without a job (issue 20, item 2): at the
next start each is fetched again from its attachment URL and delivered, or, when the URL
no longer serves it, its user is told in one sentence that it was lost."""

from __future__ import annotations

import asyncio
import time

from bot.chat.conversation import messages
from bot.process.wiring import open_store
from storage import ChatRef
from storage.intake import IntakeRequest
from tests.support.discord_bot import (
    GUILD_ID,
    OTHER_CHANNEL,
    OTHER_USER_ID,
    SONG_CHANNEL,
    USER_ID,
    make_discord_settings,
    start_discord_app,
)


async def test_accepted_songs_are_fetched_again_or_reported_lost(
    tmp_path, model_repo, telegram_songs, discord_api
):
    settings = make_discord_settings(tmp_path, model_repo)
    song = discord_api.attachment(telegram_songs["clip.mp3"], channel_id=SONG_CHANNEL)
    gone = discord_api.attachment(telegram_songs["clip.mp3"], channel_id=OTHER_CHANNEL)
    gone_url = gone["url"].replace(f"/{gone['id']}/", "/1/")  # the CDN link expired
    store = await open_store(settings)  # the previous process, killed while downloading
    for user_id, channel, url in (
        (USER_ID, SONG_CHANNEL, song["url"]),
        (OTHER_USER_ID, OTHER_CHANNEL, gone_url),
    ):
        await store.intake.accept(
            "discord",
            str(user_id),
            "Ann",
            IntakeRequest(
                chat=ChatRef(guild_id=str(GUILD_ID), channel_id=str(channel)),
                file_ref=url,
                file_name="clip.mp3",
                options={"stems": "two"},
            ),
        )
    await store.close()

    app = await start_discord_app(discord_api, settings)
    try:
        await discord_api.wait_for(
            lambda api: (
                any(text.endswith(messages.DONE) for text in api.texts(SONG_CHANNEL))
                and any(
                    text.endswith(messages.LOST_BEFORE_SAVED) for text in api.texts(OTHER_CHANNEL)
                )
            ),
            within=60,
        )
        deadline = time.monotonic() + 30  # the lost song's record goes once the user was told
        while await app.store.intake.pending():
            assert time.monotonic() < deadline, "an accepted song was never settled"
            await asyncio.sleep(0.05)
        user = await app.store.users.get("discord", str(OTHER_USER_ID))
        status = await app.store.quotas.status(user, app.flow.config.quota_limits("discord"))
        assert status.songs_used == 0
    finally:
        await app.stop(grace_seconds=5)
