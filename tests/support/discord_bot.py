"""A whole bot on Discord for tests: its settings, the servers and channels of the fake
API, the app started as ``karaoke-bot run`` starts it, and the harness through which
tests post messages, run slash commands and wait for what users see.

The adapter runs a real ``discord.Client`` (see :mod:`tests.support.fake_discord_api`);
the harness dispatches gateway payloads through the client's connection state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord

from bot.chat.conversation.messages import DONE
from bot.chat.discord.adapter import DiscordAdapter
from bot.process.app import BotApp, build_app
from bot.process.wiring import flow_config
from bot.settings import Settings
from tests.support.bot_app import make_pool
from tests.support.fake_discord_api import TOKEN, FakeDiscordApi, FakeGatewayClient

USER_ID = 510000000000000001
OTHER_USER_ID = 510000000000000002
ADMIN_ID = 510000000000000009
ADMIN_ROLE_ID = 520000000000000001
GUILD_ID = 530000000000000001
SONG_CHANNEL = 540000000000000001
OTHER_CHANNEL = 540000000000000002
BOOSTED_GUILD_ID = 530000000000000002
BOOSTED_CHANNEL = 540000000000000003
DM_CHANNEL = 550000000000000001


def make_discord_settings(tmp_path: Path, model_repo: Path, **overrides: Any) -> Settings:
    """Settings for a Discord bot with the tiny model, its admins and song channel;
    ``overrides``: sections' values."""
    raw: dict[str, Any] = {
        "general": {"data_dir": str(tmp_path / "data")},
        "model": {"name": "tiny", "repo": str(model_repo), "device": "cpu"},
        "rate_limit": {"requests_per_minute": 600, "burst": 100},
        "discord": {
            "enabled": True,
            "token": TOKEN,
            "admin_ids": [ADMIN_ID],
            "admin_role_ids": [ADMIN_ROLE_ID],
            "song_channel_ids": [SONG_CHANNEL],
        },
    }
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    return Settings.model_validate(raw)


def discord_factory(api: FakeDiscordApi):
    """``karaoke-bot run``'s Discord factory, with clients that talk to the fake API."""

    def client_factory(intents: discord.Intents) -> discord.Client:
        return FakeGatewayClient(api, intents=intents)

    def factory(settings: Settings, flow: Any) -> DiscordAdapter:
        return DiscordAdapter.from_settings(settings, flow, client_factory=client_factory)

    return factory


def add_servers(api: FakeDiscordApi) -> None:
    """The guilds the tests' users are in: an ordinary one and a boosted one."""
    api.add_guild(GUILD_ID, channel_ids=[SONG_CHANNEL, OTHER_CHANNEL], role_ids=[ADMIN_ROLE_ID])
    api.add_guild(BOOSTED_GUILD_ID, channel_ids=[BOOSTED_CHANNEL], premium_tier=2)


@dataclass
class DiscordHarness:
    """A started bot and the fake Discord API it talks to: what users do and see."""

    api: FakeDiscordApi
    app: BotApp
    settings: Settings
    songs: dict[str, Path]
    last_action: int = 0
    """Where in ``api.calls`` the test's last action (a post or a slash command) began:
    waits look after it."""

    @property
    def adapter(self) -> DiscordAdapter:
        return next(a for a in self.app.adapters if isinstance(a, DiscordAdapter))

    @property
    def client(self) -> discord.Client:
        assert self.adapter.client is not None
        return self.adapter.client

    # -- what users do ------------------------------------------------------------------
    def post(
        self,
        *,
        channel_id: int = SONG_CHANNEL,
        guild_id: int | None = GUILD_ID,
        user_id: int = USER_ID,
        **message: Any,
    ) -> dict[str, Any]:
        """A user posts a message; the gateway delivers it to the client."""
        self.last_action = self.mark()
        payload = self.api.message(
            channel_id=channel_id, author_id=user_id, guild_id=guild_id, **message
        )
        self.client._connection.parse_message_create(payload)
        return payload

    def song_attachment(
        self, name: str = "clip.mp3", *, channel_id: int = SONG_CHANNEL, **attachment: Any
    ) -> dict[str, Any]:
        return self.api.attachment(self.songs[name], channel_id=channel_id, **attachment)

    def post_song(
        self,
        name: str = "clip.mp3",
        *,
        channel_id: int = SONG_CHANNEL,
        guild_id: int | None = GUILD_ID,
        attachment: dict[str, Any] | None = None,
        **message: Any,
    ) -> dict[str, Any]:
        attachment = attachment or self.song_attachment(name, channel_id=channel_id)
        return self.post(
            channel_id=channel_id, guild_id=guild_id, attachments=[attachment], **message
        )

    def slash(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        channel_id: int = SONG_CHANNEL,
        guild_id: int | None = GUILD_ID,
        user_id: int = USER_ID,
        **interaction: Any,
    ) -> str:
        """A user runs a slash command; returns the interaction's token."""
        self.last_action = self.mark()
        payload = self.api.interaction(
            name,
            options,
            user_id=user_id,
            channel_id=channel_id,
            guild_id=guild_id,
            **interaction,
        )
        self.client._connection.parse_interaction_create(payload)
        return payload["token"]

    def karaoke(
        self,
        name: str = "clip.mp3",
        *,
        stems: str | None = None,
        output_format: str | None = None,
        channel_id: int = SONG_CHANNEL,
        attachment: dict[str, Any] | None = None,
        declared_size: int | None = None,
        **interaction: Any,
    ) -> str:
        """``/karaoke file:<name> [stems] [format]``; returns the interaction's token."""
        attachment = attachment or self.song_attachment(
            name, channel_id=channel_id, declared_size=declared_size
        )
        options: list[dict[str, Any]] = [{"name": "file", "type": 11, "value": attachment["id"]}]
        if stems:
            options.append({"name": "stems", "type": 3, "value": stems})
        if output_format:
            options.append({"name": "format", "type": 3, "value": output_format})
        return self.slash(
            "karaoke", options, channel_id=channel_id, attachments=[attachment], **interaction
        )

    # -- what users see -----------------------------------------------------------------
    def mark(self) -> int:
        """A point in the bot's history, for ``wait_for_text(..., since=...)``."""
        return len(self.api.calls)

    async def wait_for_text(
        self,
        fragment: str,
        channel_id: int = SONG_CHANNEL,
        within: float = 60,
        *,
        since: int | None = None,
    ) -> None:
        """Until the bot shows a text containing ``fragment`` in ``channel_id`` after
        ``since`` (a :meth:`mark`; by default the start of the last post or slash command):
        an answer to an earlier message never satisfies a later wait."""
        start = self.last_action if since is None else since
        await self.api.wait_for(
            lambda api: any(fragment in text for text in api.texts(channel_id, since=start)),
            within,
        )

    async def settle(self, within: float = 60) -> None:
        """Until the bot has done all it was going to do about what users posted so far
        (handlers returned, songs over): nothing more is on its way."""
        await asyncio.wait_for(self.adapter.wait_until_idle(), within)

    async def wait_for_done(
        self,
        fragment: str = DONE,
        channel_id: int = SONG_CHANNEL,
        user_id: int = USER_ID,
        within: float = 60,
        *,
        since: int | None = None,
    ) -> None:
        """Until "Done!" is shown (after ``since``, as in :meth:`wait_for_text`) and the
        files that follow it were sent (the job is over)."""
        await self.wait_for_text(fragment, channel_id, within, since=since)
        user = await self.app.store.users.get("discord", str(user_id))
        deadline = time.monotonic() + within
        while await self.app.store.jobs.active(user):
            assert time.monotonic() < deadline, "the job did not finish after Done!"
            await asyncio.sleep(0.05)

    async def songs_used(self, user_id: int = USER_ID) -> int:
        store = self.app.store
        user = await store.users.get("discord", str(user_id))
        status = await store.quotas.status(user, self.app.flow._config.quota_limits("discord"))
        return status.songs_used


async def start_discord_app(
    api: FakeDiscordApi, settings: Settings, *, extra_factories: list | None = None, **pool: Any
) -> BotApp:
    """Build and start the bot as ``karaoke-bot run`` would, against the fake API."""
    # A short edit interval keeps tests fast; the 3 s default is tested in tests/telegram.
    config = dataclasses.replace(flow_config(settings), progress_interval_seconds=0.2)
    app = await build_app(
        settings,
        backend=make_pool(settings, **pool),
        config=config,
        adapter_factories=[*(extra_factories or []), discord_factory(api)],
    )
    await app.start()
    adapter = next(a for a in app.adapters if a.platform == "discord")
    await api.wait_for(lambda _: adapter.client and adapter.client.is_ready(), 10)
    return app
