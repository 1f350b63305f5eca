"""A whole bot (store, pool with a tiny model, flow, Discord adapter) against the fake API.

The adapter runs a real ``discord.Client`` (see ``tests/support/fake_discord_api.py``);
tests post messages and run slash commands by dispatching gateway payloads through the
client's connection state (``tests/support/discord_bot.py``), and assert on the REST
calls the fake API recorded: what a user would see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.discord_bot import (
    DiscordHarness,
    add_servers,
    make_discord_settings,
    start_discord_app,
)
from tests.support.fake_discord_api import FakeDiscordApi


@pytest.fixture
async def discord_api() -> AsyncIterator[FakeDiscordApi]:
    api = FakeDiscordApi()
    add_servers(api)
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


@pytest.fixture
async def discord_bot(
    request, tmp_path, model_repo, telegram_songs, discord_api
) -> AsyncIterator[DiscordHarness]:
    """Parametrize through ``request.param``: {"settings", "pool", "api"} dicts."""
    options = getattr(request, "param", {}) or {}
    for name, value in options.get("api", {}).items():
        setattr(discord_api, name, value)
    settings = make_discord_settings(tmp_path, model_repo, **options.get("settings", {}))
    app = await start_discord_app(discord_api, settings, **options.get("pool", {}))
    harness = DiscordHarness(api=discord_api, app=app, settings=settings, songs=telegram_songs)
    try:
        yield harness
    finally:
        await app.stop(grace_seconds=5)
