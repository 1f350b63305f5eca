"""Webhook mode: Telegram posts updates to the bot's own HTTP server (here: the test)."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from tests.support.telegram_bot import USER_ID


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


WEBHOOK_PORT = _free_port()


@pytest.mark.parametrize(
    "telegram_bot",
    [
        {
            "settings": {
                "telegram": {
                    "mode": "webhook",
                    "webhook_url": "https://bot.example.org/telegram",
                    "webhook_listen": "127.0.0.1",
                    "webhook_port": WEBHOOK_PORT,
                    "webhook_secret": "s3cret-webhook-value",
                }
            }
        }
    ],
    indirect=True,
)
async def test_updates_posted_to_the_webhook_are_answered(telegram_bot):
    registered = telegram_bot.api.calls_to("setWebhook")
    assert len(registered) == 1
    assert registered[0].params["url"] == "https://bot.example.org/telegram"
    assert registered[0].params["secret_token"] == "s3cret-webhook-value"
    assert telegram_bot.api.polls == 0

    update = {
        "update_id": 1,
        "message": telegram_bot.api.message(chat_id=USER_ID, user_id=USER_ID, text="/quota"),
    }
    url = f"http://127.0.0.1:{WEBHOOK_PORT}/telegram"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}
        ) as response:
            assert response.status == 403  # forged updates are refused
        async with session.post(
            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-webhook-value"}
        ) as response:
            assert response.status == 200
    await telegram_bot.wait_for_text("You have 10 songs")


WEBHOOK_SONG_PORT = _free_port()


@pytest.mark.parametrize(
    "telegram_bot",
    [
        {
            "settings": {
                "telegram": {
                    "mode": "webhook",
                    "webhook_url": "https://bot.example.org/telegram",
                    "webhook_listen": "127.0.0.1",
                    "webhook_port": WEBHOOK_SONG_PORT,
                }
            }
        }
    ],
    indirect=True,
)
async def test_a_song_is_on_record_before_the_webhook_is_answered(telegram_bot):
    """Telegram does not post an answered update again: a crash right after the answer
    must still find the song on record (issue 20)."""
    api = telegram_bot.api
    api.hold_files()  # the download stays under way: no job can exist yet
    media = api.audio_attachment(telegram_bot.songs["clip.mp3"])
    update = {"update_id": 1, "message": api.message(chat_id=USER_ID, user_id=USER_ID, **media)}
    url = f"http://127.0.0.1:{WEBHOOK_SONG_PORT}/telegram"
    try:
        async with aiohttp.ClientSession() as session, session.post(url, json=update) as answer:
            assert answer.status == 200
            [accepted] = await telegram_bot.app.store.intake.pending()
    finally:
        api.release_files()
    assert accepted.file_ref == media["audio"]["file_id"]
    await telegram_bot.wait_for_done()
    assert await telegram_bot.app.store.intake.pending() == []
