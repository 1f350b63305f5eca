"""``karaoke-bot run --config config.toml`` as a real process against the fake Bot API."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.support.fake_bot_api import TOKEN, FakeBotApi
from tests.support.telegram_bot import USER_ID, run_bot, write_config


def _separating(api: FakeBotApi) -> bool:
    """The user sees the song being separated (progress edits come every 3 s)."""
    return any(text.startswith("Separating...") for text in api.texts_in_chat(USER_ID))


@pytest.fixture
async def api():
    server = FakeBotApi()
    await server.start()
    yield server
    await server.stop()


async def test_run_serves_a_song_and_stops_gracefully_on_sigterm(
    api, tmp_path, model_repo, shared_music
):
    # -v: debug logging, where httpx and PTB log request URLs that contain the token.
    process = await run_bot(write_config(tmp_path, api, model_repo), TOKEN, "-v")
    try:
        await api.wait_for(lambda a: a.calls_to("setMyCommands"), within=60)
        # 2:13 of real music: the tiny model needs several seconds, so SIGTERM lands mid-job.
        media = api.audio_attachment(shared_music / "lets-go-fishin.ogg", mime_type="audio/ogg")
        api.push_update({"message": api.message(chat_id=USER_ID, user_id=USER_ID, **media)})
        await api.wait_for(lambda a: a.calls_to("getFile"), within=60)
        await api.wait_for(_separating, within=60)  # the job is running in the pool
        assert not api.calls_to("sendAudio")
        process.send_signal(signal.SIGTERM)  # mid-job: the job must still be delivered
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    assert api.texts_in_chat(USER_ID)[-1].startswith("Done!")
    assert len(api.calls_to("sendAudio")) == 2
    data_dir = tmp_path / "data"
    assert list((data_dir / "tmp").iterdir()) == []  # job folders removed on the way out
    assert list((data_dir / "uploads").iterdir()) == []
    log = stderr.decode()
    assert "HTTP Request" in log or "getUpdates" in log  # the debug log really was written
    assert TOKEN not in log and TOKEN.split(":")[1] not in log


async def test_missing_token_is_one_line_and_exit_2(api, tmp_path, model_repo):
    process = await run_bot(write_config(tmp_path, api, model_repo), None)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    lines = [  # the prefix of bot.cli.messages.error
        line.replace("karaoke-bot: error: ", "karaoke-bot: ", 1)
        for line in stderr.decode().splitlines()
        if line.startswith("karaoke-bot:")
    ]
    assert lines == [
        "karaoke-bot: Telegram is enabled but no token is set: set "
        "KARAOKE_TELEGRAM_TOKEN or telegram.token"
    ]
    assert "Traceback" not in stderr.decode()


async def test_rejected_token_is_one_line_and_exit_2(api, tmp_path, model_repo):
    process = await run_bot(write_config(tmp_path, api, model_repo), "999:wrong-token")
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "Telegram rejected the bot token" in stderr.decode()
    assert len([line for line in stderr.decode().splitlines() if "karaoke-bot:" in line]) == 1
    assert "Traceback" not in stderr.decode()
    assert "wrong-token" not in stderr.decode()


async def test_a_song_unfinished_at_shutdown_is_delivered_after_the_restart(
    api, tmp_path, model_repo, shared_music
):
    config = write_config(tmp_path, api, model_repo, grace=0)
    first = await run_bot(config, TOKEN)
    try:
        await api.wait_for(lambda a: a.calls_to("setMyCommands"), within=60)
        media = api.audio_attachment(shared_music / "lets-go-fishin.ogg", mime_type="audio/ogg")
        api.push_update({"message": api.message(chat_id=USER_ID, user_id=USER_ID, **media)})
        await api.wait_for(lambda a: a.calls_to("getFile"), within=60)
        await api.wait_for(_separating, within=60)  # the job is running in the pool
        first.send_signal(signal.SIGTERM)  # no grace period: the job cannot finish
        await asyncio.wait_for(first.communicate(), 60)
    finally:
        if first.returncode is None:
            first.kill()
    assert first.returncode == 0
    assert "restarting; your song is saved" in api.texts_in_chat(USER_ID)[-1]
    assert api.calls_to("sendAudio") == []

    second = await run_bot(write_config(tmp_path, api, model_repo), TOKEN)
    try:
        await api.wait_for(lambda a: len(a.calls_to("sendAudio")) == 2, within=120)
        await api.wait_for(lambda a: a.texts_in_chat(USER_ID)[-1].startswith("Done!"), within=30)
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.communicate(), 60)
    finally:
        if second.returncode is None:
            second.kill()
    names = [call.files["audio"][0] for call in api.calls_to("sendAudio")]
    assert names == ["Let's Go Fishin' (Instrumental).mp3", "Let's Go Fishin' (Vocals).mp3"]
