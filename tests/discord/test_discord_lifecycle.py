"""Starting and stopping: tokens, command sync, the message-content intent, restarts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bot.chat.conversation import messages
from bot.chat.conversation.messages import DONE
from bot.chat.discord.adapter import (
    INTENT_REFUSED_WARNING,
    NO_INTENT_WARNING,
    DiscordStartError,
)
from bot.chat.discord.sync import STATE_FILE_NAME
from bot.cli.main import main
from bot.process.wiring import open_store, quota_limits
from storage.order import StoredOrder
from storage.records import ChatRef, JobRequest
from tests.support.discord_bot import (
    GUILD_ID,
    SONG_CHANNEL,
    USER_ID,
    make_discord_settings,
    start_discord_app,
)
from tests.support.fake_discord_api import APP_ID, TOKEN

REPO = Path(__file__).resolve().parents[2]


def _warnings(records, message: str) -> int:
    return sum(r.getMessage() == message and r.levelno == logging.WARNING for r in records)


async def test_commands_are_synced_once_and_again_only_when_they_change(
    discord_api, tmp_path, model_repo
):
    settings = make_discord_settings(tmp_path, model_repo)
    for expected_syncs in (1, 1):  # a restart with the same commands does not sync
        app = await start_discord_app(discord_api, settings)
        await app.stop(grace_seconds=1)
        assert len(discord_api.calls_to("sync")) == expected_syncs
    [sync] = discord_api.calls_to("sync")
    assert sync.path == f"/api/v10/applications/{APP_ID}/commands"  # global
    names = {command["name"] for command in sync.payload["commands"]}
    assert names == {"karaoke", "video", "quota", "status", "cancel", "help", "admin"}
    karaoke = next(c for c in sync.payload["commands"] if c["name"] == "karaoke")
    options = {option["name"]: option for option in karaoke["options"]}
    assert list(options) == ["file", "url", "stems", "format", "key", "tempo", "guide", "lyrics"]
    assert not options["file"].get("required") and not options["url"].get("required")
    assert options["url"]["max_length"] == 2048  # a song as a link: exactly one of the two
    assert (options["key"]["min_value"], options["key"]["max_value"]) == (-6, 6)
    assert (options["tempo"]["min_value"], options["tempo"]["max_value"]) == (0.5, 1.5)
    assert (options["guide"]["min_value"], options["guide"]["max_value"]) == (-30, -6)

    state = settings.general.data_dir / "discord" / STATE_FILE_NAME
    state.write_text(json.dumps({f"{APP_ID}:global": "a hash of older commands"}))
    app = await start_discord_app(discord_api, settings)
    await app.stop(grace_seconds=1)
    assert len(discord_api.calls_to("sync")) == 2


async def test_a_test_server_gets_the_commands_at_once(discord_api, tmp_path, model_repo):
    settings = make_discord_settings(tmp_path, model_repo, discord={"test_guild_id": GUILD_ID})
    app = await start_discord_app(discord_api, settings)
    await app.stop(grace_seconds=1)
    [sync] = discord_api.calls_to("sync")
    assert sync.path == f"/api/v10/applications/{APP_ID}/guilds/{GUILD_ID}/commands"


async def test_a_rejected_token_is_one_clear_error_and_never_logged(
    discord_api, tmp_path, model_repo, caplog
):
    caplog.set_level(logging.DEBUG)
    discord_api.token = "another-token"
    settings = make_discord_settings(tmp_path, model_repo)
    with pytest.raises(DiscordStartError) as refused:
        await start_discord_app(discord_api, settings)
    assert str(refused.value) == "Discord rejected the bot token (check KARAOKE_DISCORD_TOKEN)"
    assert TOKEN not in caplog.text and TOKEN.split(".")[-1] not in caplog.text


def test_a_missing_token_stops_run_with_one_line_and_exit_2(
    tmp_path, model_repo, capsys, monkeypatch
):
    config = tmp_path / "config.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[model]\nname = "tiny"\nrepo = "{model_repo}"\ndevice = "cpu"\n'
        "[discord]\nenabled = true\n"
    )
    monkeypatch.delenv("KARAOKE_DISCORD_TOKEN", raising=False)
    assert main(["--config", str(config), "run"]) == 2
    stderr = capsys.readouterr().err
    lines = [  # the prefix of bot.cli.messages.error
        line.replace("karaoke-bot: error: ", "karaoke-bot: ", 1)
        for line in stderr.splitlines()
        if line.startswith("karaoke-bot:")
    ]
    assert lines == [
        "karaoke-bot: Discord is enabled but no token is set: set "
        "KARAOKE_DISCORD_TOKEN or discord.token"
    ]
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "discord_bot", [{"settings": {"discord": {"message_content_intent": False}}}], indirect=True
)
async def test_without_the_intent_slash_commands_still_work(discord_bot, caplog):
    assert _warnings(caplog.get_records("setup"), NO_INTENT_WARNING) == 1
    assert not discord_bot.client.intents.message_content
    discord_bot.karaoke("notes.mp3")  # deferred, downloaded, checked: the whole slash path
    await discord_bot.wait_for_text("doesn't look like audio")


@pytest.mark.parametrize("discord_bot", [{"api": {"refuse_message_content": True}}], indirect=True)
async def test_a_refused_intent_reconnects_once_without_it(discord_bot, caplog):
    assert _warnings(caplog.get_records("setup"), INTENT_REFUSED_WARNING) == 1
    api = discord_bot.api
    assert api.gateway_sessions == 2
    assert len(api.calls_to("login")) == 2 and len(api.calls_to("sync")) == 1
    assert not discord_bot.client.intents.message_content
    discord_bot.karaoke("notes.mp3")
    await discord_bot.wait_for_text("doesn't look like audio")
    assert await discord_bot.adapter.is_connected()


async def test_after_stop_receiving_new_songs_are_turned_away(discord_bot):
    await discord_bot.adapter.stop_receiving()
    token = discord_bot.karaoke()
    await discord_bot.api.wait_for(lambda api: api.interaction_texts(token))
    assert discord_bot.api.interaction_texts(token) == [messages.STOPPING]
    discord_bot.post_song()
    await discord_bot.settle()
    assert discord_bot.api.calls_to("download", "send") == []


async def test_a_job_a_crash_left_behind_is_delivered_in_its_channel(
    discord_api, tmp_path, model_repo, telegram_songs
):
    settings = make_discord_settings(tmp_path, model_repo)
    store = await open_store(settings)
    user = await store.users.upsert("discord", str(USER_ID), "Ann")
    song = telegram_songs["clip.mp3"]

    async def chunks():
        yield song.read_bytes()

    saved = await store.files.save_upload(chunks(), max_bytes=10**8)
    request = JobRequest(
        input_sha256=saved.sha256,
        input_duration_seconds=6.0,
        input_size_bytes=saved.size_bytes,
        model="tiny",
        order=StoredOrder(stems="two", output_format="mp3"),
        original_filename=song.name,
        input_path=saved.path,
        chat=ChatRef(
            chat_id=str(SONG_CHANNEL),
            guild_id=str(GUILD_ID),
            channel_id=str(SONG_CHANNEL),
            message_id="1234",
        ),
    )
    job = await store.jobs.reserve(user, request, quota_limits(settings, "discord"))
    await store.jobs.mark_running(job.id)
    await store.close()  # the process "crashed" here

    app = await start_discord_app(discord_api, settings)
    try:
        await discord_api.wait_for(
            lambda api: any(text.endswith(DONE) for text in api.texts(SONG_CHANNEL)), 30
        )
        await discord_api.wait_for(lambda api: api.uploads(SONG_CHANNEL), 30)
    finally:
        await app.stop(grace_seconds=5)
    mention = f"<@{user.platform_user_id}>"
    assert all(text.startswith(mention) for text in discord_api.texts(SONG_CHANNEL))
    [delivery] = discord_api.uploads(SONG_CHANNEL)
    assert delivery.file_names == ["clip (Instrumental).mp3", "clip (Vocals).mp3"]
    assert str(delivery.payload["message_reference"]["message_id"]) == "1234"
