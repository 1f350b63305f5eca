"""The Bot API's answers the adapter must handle (issue 11): unknown methods, edits that
change nothing, the 20 MB download and 50 MB upload limits, dropped connections, and a
local Bot API server (``local_mode``), all through python-telegram-bot and the fake."""

from __future__ import annotations

import aiohttp
import pytest

from bot.chat.telegram.adapter import TelegramReplier
from tests.support.fake_bot_api import NOT_MODIFIED, TOKEN
from tests.support.telegram_bot import USER_ID


async def test_the_fake_answers_an_unknown_method_like_the_bot_api(telegram_bot):
    url = f"{telegram_bot.api.base_url}{TOKEN}/sendNothing"
    async with aiohttp.ClientSession() as session, session.post(url, json={}) as response:
        assert response.status == 404
        assert await response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found",
        }


async def test_an_edit_that_changes_nothing_is_not_an_error(telegram_bot):
    adapter = telegram_bot.app.adapters[0]
    replier = TelegramReplier(adapter.application, USER_ID, None, adapter.upload_plan)
    message = await replier.send_text("Separating... 50%")
    await replier.edit_text(message, "Separating... 60%")
    await replier.edit_text(message, "Separating... 60%")  # Telegram: 400 not modified
    edits = telegram_bot.api.calls_to("editMessageText")
    assert len(edits) == 2
    assert NOT_MODIFIED.startswith("Bad Request: message is not modified")


async def test_a_dropped_connection_on_an_idempotent_call_is_retried(telegram_bot):
    telegram_bot.api.drop_next("getFile")
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_done()
    assert len(telegram_bot.api.calls_to("getFile")) == 2  # dropped, then answered
    assert len(telegram_bot.audio_uploads()) == 2


@pytest.mark.parametrize("telegram_bot", [{"api": {"download_limit": 50_000}}], indirect=True)
async def test_a_file_the_bot_api_will_not_hand_out_is_explained(telegram_bot):
    await telegram_bot.send_song("clip.mp3")  # ~100 KB; this "Bot API" hands out 50 KB
    await telegram_bot.wait_for_text("too big")
    assert telegram_bot.api.texts_in_chat(USER_ID) == [
        "Downloading your song...",
        "That file is too big for me to download here; the limit is 20 MB. "
        "Try a compressed MP3 or a shorter clip.",
    ]
    assert len(telegram_bot.api.calls_to("getFile")) == 1  # a refusal is not retried
    assert await telegram_bot.songs_used() == 0


@pytest.mark.parametrize("telegram_bot", [{"api": {"upload_limit": 30_000}}], indirect=True)
async def test_a_result_telegram_refuses_as_too_big_is_explained_not_retried(telegram_bot):
    await telegram_bot.send_song("clip.mp3")  # 6 s: ~70 KB per file at the lowest bitrate
    await telegram_bot.wait_for_text("too long for the results to fit")
    assert len(telegram_bot.audio_uploads()) == 1
    assert telegram_bot.api.texts_in_chat(USER_ID)[-1] == (
        "Your song is too long for the results to fit this chat's upload limit (50 MB per "
        "file), even at the lowest quality I send. Try a shorter song, or MP3 instead of FLAC."
    )
    assert await telegram_bot.songs_used() == 0


@pytest.mark.parametrize(
    "telegram_bot",
    [
        {
            "api": {"local_mode": True, "download_limit": 50_000},
            "settings": {"telegram": {"local_mode": True}},
        }
    ],
    indirect=True,
)
async def test_local_mode_reads_the_file_from_the_servers_disk_without_the_limit(telegram_bot):
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_done()
    assert len(telegram_bot.api.calls_to("getFile")) == 1
    assert telegram_bot.api.file_downloads == 0  # read from disk, not over HTTP
    assert len(telegram_bot.audio_uploads()) == 2
