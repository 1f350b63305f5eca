"""Songs sent as links on Discord, through a real ``discord.Client`` against the fake API
and a local link server: a link posted where songs are accepted, and ``/karaoke url:``
(exactly one of ``file:`` and ``url:``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.chat.conversation.messages import DONE, FILE_OR_LINK
from tests.support.discord_bot import (
    DM_CHANNEL,
    OTHER_CHANNEL,
    SONG_CHANNEL,
    DiscordHarness,
    make_discord_settings,
    start_discord_app,
)
from tests.support.link_servers import LinkServer, running_link_server

EPHEMERAL = 64


@pytest.fixture
async def server(telegram_songs) -> AsyncIterator[LinkServer]:
    async with running_link_server() as running:
        running.add_media("clip.mp3", telegram_songs["clip.mp3"].read_bytes())
        yield running


@pytest.fixture
async def bot(tmp_path, model_repo, telegram_songs, discord_api, server) -> AsyncIterator:
    links = {"allowed_networks": ["127.0.0.0/8"], "allowed_ports": [server.port]}
    settings = make_discord_settings(tmp_path, model_repo, links=links)
    app = await start_discord_app(discord_api, settings)
    try:
        yield DiscordHarness(api=discord_api, app=app, settings=settings, songs=telegram_songs)
    finally:
        await app.stop(grace_seconds=5)


@pytest.mark.parametrize(
    "where",
    [
        {},  # the song channel
        {"channel_id": DM_CHANNEL, "guild_id": None},
        {"channel_id": OTHER_CHANNEL, "mention_bot": True},
    ],
    ids=["song channel", "DM", "mention"],
)
async def test_a_posted_link_gets_the_two_files(bot, server, where):
    channel_id = where.get("channel_id", SONG_CHANNEL)
    bot.post(content=f"this one {server.url('/media/clip.mp3')} please", **where)
    await bot.wait_for_done(channel_id=channel_id)
    names = [name for call in bot.api.uploads(channel_id) for name in call.file_names]
    assert len(names) == 2
    assert server.requests["/media/clip.mp3"] == 1


async def test_a_link_elsewhere_in_a_server_is_ignored(bot, server):
    bot.post(channel_id=OTHER_CHANNEL, content=server.url("/media/clip.mp3"))
    await bot.settle()
    assert sum(server.requests.values()) == 0
    assert bot.api.texts(OTHER_CHANNEL) == []


async def test_karaoke_url_gets_the_two_files(bot, server):
    token = bot.slash(
        "karaoke", [{"name": "url", "type": 3, "value": server.url("/media/clip.mp3")}]
    )
    await bot.wait_for_done()
    assert bot.api.interaction_texts(token)[-1] == DONE
    [followup] = bot.api.calls_to("followup")
    assert len(followup.file_names) == 2
    assert server.requests["/media/clip.mp3"] == 1


async def test_karaoke_wants_exactly_one_of_file_and_url(bot, server):
    attachment = bot.song_attachment("clip.mp3")
    options = [
        {"name": "file", "type": 11, "value": attachment["id"]},
        {"name": "url", "type": 3, "value": server.url("/media/clip.mp3")},
    ]
    token = bot.slash("karaoke", options, attachments=[attachment])
    await bot.api.wait_for(lambda api: api.interaction_texts(token) == [FILE_OR_LINK])
    neither = bot.slash("karaoke", [])
    await bot.api.wait_for(lambda api: api.interaction_texts(neither) == [FILE_OR_LINK])
    assert all(call.payload["data"]["flags"] == EPHEMERAL for call in bot.api.calls_to("respond"))
    assert sum(server.requests.values()) == 0


async def test_karaoke_url_with_a_bad_link_is_refused_at_once(bot, server):
    token = bot.slash("karaoke", [{"name": "url", "type": 3, "value": "file:///etc/passwd"}])
    await bot.api.wait_for(lambda api: len(api.interaction_texts(token)) == 1)
    [text] = bot.api.interaction_texts(token)
    assert "doesn't look like a link" in text and "passwd" not in text
