"""Operations seen through the running Telegram bot: rate limit, metrics, readiness."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.fake_bot_api import TOKEN
from tests.support.telegram_bot import USER_ID


@pytest.mark.parametrize(
    "telegram_bot",
    [{"settings": {"rate_limit": {"requests_per_minute": 1, "burst": 2}}}],
    indirect=True,
)
async def test_a_flooding_user_gets_one_notice_not_one_reply_per_message(telegram_bot):
    for _ in range(8):
        await telegram_bot.send(text="/quota")
    await telegram_bot.wait_for_text("Slow down")
    await telegram_bot.settle()  # every /quota was handled: nothing more is coming
    texts = telegram_bot.api.texts_in_chat(USER_ID)
    assert sum(text.startswith("You have") for text in texts) == 2
    assert sum(text.startswith("Slow down") for text in texts) == 1
    assert len(texts) == 3
    metrics = telegram_bot.app.metrics.render().decode()
    assert 'karaoke_quota_refusals_total{reason="rate_limit"} 6.0' in metrics


async def test_jobs_and_cache_are_counted(telegram_bot):
    for expected_done in (1, 2):  # the same song twice: the second comes from the cache
        await telegram_bot.send_song("clip.mp3")
        await telegram_bot.api.wait_for(
            lambda api, n=expected_done: len(api.calls_to("sendAudio")) == 2 * n, within=60
        )
        await telegram_bot.wait_for_done()
    metrics = telegram_bot.app.metrics.render().decode()
    assert 'karaoke_jobs_total{platform="telegram",status="done"} 2.0' in metrics
    assert "karaoke_cache_hits_total 1.0" in metrics
    assert "karaoke_cache_misses_total 1.0" in metrics
    assert "karaoke_audio_processed_seconds_total 6.0" in metrics  # only the song that ran
    assert "karaoke_realtime_factor_count 1.0" in metrics
    _, status = await _quota(telegram_bot)
    assert status.songs_used == 1  # the cache hit was free


async def _quota(bot):
    store = bot.app.store
    user = await store.users.get("telegram", str(USER_ID))
    return user, await store.quotas.status(user, bot.app.flow._config.quota_limits("telegram"))


@pytest.mark.parametrize(
    "telegram_bot", [{"settings": {"health": {"enabled": True, "port": 0}}}], indirect=True
)
async def test_health_endpoints_of_the_running_bot(telegram_bot):
    port = telegram_bot.app.health.port
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
        async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
            assert response.status == 200
            body = await response.json()
        assert set(body["checks"]) >= {"model_loaded", "database", "telegram"}
        await telegram_bot.app.adapters[0].stop_receiving()
        async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
            assert response.status == 503
            assert "telegram" in (await response.json())["failing"]
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    assert "karaoke_queue_length" in text
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
