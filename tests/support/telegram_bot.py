"""A whole bot on Telegram for tests: its settings against the fake Bot API, and the
harness through which tests send messages and wait for what the user sees."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.chat.telegram.adapter import TelegramAdapter
from bot.process.app import BotApp, build_app
from bot.process.wiring import flow_config
from bot.settings import Settings
from tests.support.bot_app import make_pool
from tests.support.fake_bot_api import TOKEN, FakeBotApi, RecordedCall

USER_ID = 4242
ADMIN_ID = 7777


@dataclass
class TelegramHarness:
    """A started bot and the fake Bot API it talks to: what users do and what they see."""

    api: FakeBotApi
    app: BotApp
    settings: Settings
    songs: dict[str, Path]
    last_action: int = 0
    """Where in ``api.calls`` the test's last action (``send``) began: waits look after it."""

    @property
    def adapter(self) -> TelegramAdapter:
        return next(a for a in self.app.adapters if isinstance(a, TelegramAdapter))

    def mark(self) -> int:
        """A point in the bot's history, for ``wait_for_text(..., since=...)``."""
        return len(self.api.calls)

    async def send(self, *, chat_id: int = USER_ID, user_id: int = USER_ID, **message: Any) -> dict:
        self.last_action = self.mark()
        update = {"message": self.api.message(chat_id=chat_id, user_id=user_id, **message)}
        self.api.push_update(update)
        return update["message"]

    async def send_song(
        self,
        name: str = "clip.mp3",
        *,
        kind: str = "audio",
        chat_id: int = USER_ID,
        user_id: int = USER_ID,
        chat_type: str = "private",
        caption: str | None = None,
        **attachment: Any,
    ) -> dict:
        media = self.api.audio_attachment(self.songs[name], kind=kind, **attachment)
        if caption is not None:
            media["caption"] = caption
            media["caption_entities"] = self.api.mention_entities(caption)
        return await self.send(chat_id=chat_id, user_id=user_id, chat_type=chat_type, **media)

    @staticmethod
    def button_data(call: RecordedCall, label: str) -> str:
        """The data of the button labelled ``label`` under what ``call`` sent."""
        rows = call.params["reply_markup"]["inline_keyboard"]
        return next(
            button["callback_data"] for row in rows for button in row if button["text"] == label
        )

    def press(self, call: RecordedCall, label: str, *, user_id: int = USER_ID) -> int:
        """Press ``label`` under the message ``call`` sent; returns the mark before it."""
        mark = self.mark()
        self.last_action = mark
        data = self.button_data(call, label)
        self.api.push_update(
            self.api.press(self.api.sent_message(call), user_id=user_id, data=data)
        )
        return mark

    async def uploads_after(self, mark: int, count: int, method: str = "sendAudio") -> list:
        """The first ``count`` uploads by ``method`` after ``mark``, once they were made."""
        await self.api.wait_for(
            lambda api: len([c for c in api.calls[mark:] if c.method == method]) >= count
        )
        return [c for c in self.api.calls[mark:] if c.method == method]

    def audio_uploads(self, chat_id: int = USER_ID) -> list:
        return [
            call
            for call in self.api.calls_to("sendAudio")
            if str(call.params.get("chat_id")) == str(chat_id)
        ]

    async def songs_used(self, user_id: int = USER_ID) -> int:
        store = self.app.store
        user = await store.users.get("telegram", str(user_id))
        status = await store.quotas.status(user, self.app.flow._config.quota_limits("telegram"))
        return status.songs_used

    async def wait_for_text(
        self, fragment: str, chat_id: int = USER_ID, within: float = 60, *, since: int | None = None
    ) -> None:
        """Until the bot shows a text containing ``fragment`` in ``chat_id`` after ``since``
        (a :meth:`mark`; by default the start of the last :meth:`send`): an answer to an
        earlier message never satisfies a later wait."""
        start = self.last_action if since is None else since
        await self.api.wait_for(
            lambda api: any(fragment in text for text in api.texts_in_chat(chat_id, since=start)),
            within,
        )

    async def settle(self, within: float = 60) -> None:
        """Until the bot has fetched every update sent so far and done all it was going to
        do about them (handlers returned, songs over): nothing more is on its way."""
        await self.api.wait_for(lambda api: api.unconfirmed_updates == 0, within)
        await asyncio.wait_for(self.adapter.wait_until_idle(), within)

    async def wait_for_done(
        self,
        chat_id: int = USER_ID,
        user_id: int = USER_ID,
        within: float = 60,
        *,
        since: int | None = None,
    ) -> None:
        """Until "Done!" is shown (after ``since``, as in :meth:`wait_for_text`) and the
        files that follow it were sent (the job is over)."""
        await self.wait_for_text("Done!", chat_id, within, since=since)
        user = await self.app.store.users.get("telegram", str(user_id))
        deadline = time.monotonic() + within
        while await self.app.store.jobs.active(user):
            assert time.monotonic() < deadline, "the job did not finish after Done!"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_telegram_bot(
    tmp_path: Path,
    model_repo: Path,
    songs: dict[str, Path],
    *,
    settings: dict[str, dict[str, Any]] | None = None,
    pool: dict[str, Any] | None = None,
    api_options: dict[str, Any] | None = None,
    progress_interval: float = 0.2,
) -> AsyncIterator[TelegramHarness]:
    """A started bot on a fresh fake Bot API (``settings``: sections' overrides), stopped
    on exit. A short edit interval keeps tests fast; the 3 s default is tested alone."""
    api = FakeBotApi()
    for name, value in (api_options or {}).items():
        setattr(api, name, value)
    await api.start()
    bot_settings = make_settings(tmp_path, api, model_repo, **(settings or {}))
    config = dataclasses.replace(
        flow_config(bot_settings), progress_interval_seconds=progress_interval
    )
    app = await build_app(
        bot_settings,
        backend=make_pool(bot_settings, **(pool or {})),
        config=config,
        adapter_factories=[lambda s, flow: TelegramAdapter(s.telegram, flow)],
    )
    await app.start()
    try:
        yield TelegramHarness(api=api, app=app, settings=bot_settings, songs=songs)
    finally:
        await app.stop(grace_seconds=5)
        await api.stop()


def make_settings(tmp_path: Path, api: FakeBotApi, model_repo: Path, **overrides: Any) -> Settings:
    """Settings for a bot on ``api`` with the tiny model; ``overrides``: sections' values."""
    raw: dict[str, Any] = {
        "general": {"data_dir": str(tmp_path / "data")},
        "model": {"name": "tiny", "repo": str(model_repo), "device": "cpu"},
        "telegram": {
            "enabled": True,
            "token": TOKEN,
            "base_url": api.base_url,
            "base_file_url": api.base_file_url,
            "admin_ids": [ADMIN_ID],
        },
        # Never the internet: a test that wants LRCLIB points it at the local fake.
        "lyrics": {"lrclib": False},
    }
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    return Settings.model_validate(raw)


async def restart_bot(settings: Settings) -> BotApp:
    """The bot started again on the same data: store, pool and Telegram, recovering jobs."""
    config = dataclasses.replace(flow_config(settings), progress_interval_seconds=0.2)
    app = await build_app(
        settings,
        backend=make_pool(settings),
        config=config,
        adapter_factories=[lambda s, flow: TelegramAdapter(s.telegram, flow)],
    )
    await app.start()
    return app


def write_config(
    tmp_path: Path, api: FakeBotApi, model_repo: Path, grace: float = 120, extra: str = ""
) -> Path:
    """A ``config.toml`` for ``karaoke-bot run`` on ``api`` with the tiny model; ``extra``:
    more TOML tables, appended."""
    config = tmp_path / "config.toml"
    config.write_text(f"""
[general]
data_dir = "{tmp_path / "data"}"
[model]
name = "tiny"
repo = "{model_repo}"
device = "cpu"
[pool]
shutdown_timeout_seconds = {grace}
[telegram]
enabled = true
base_url = "{api.base_url}"
base_file_url = "{api.base_file_url}"
{extra}""")
    return config


async def run_bot(config: Path, token: str | None, *flags: str) -> asyncio.subprocess.Process:
    """``karaoke-bot [flags] run`` as a real process, the token (if any) in its
    environment, none of the developer's ``KARAOKE_*`` variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KARAOKE_")}
    if token is not None:
        env["KARAOKE_TELEGRAM_TOKEN"] = token
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli.main",
        "--config",
        str(config),
        *flags,
        "run",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
