"""A whole bot (store, pool with a tiny model, flow, PTB adapter) against the fake Bot API."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.chat.telegram.adapter import TelegramAdapter
from bot.process.app import BotApp, build_app
from bot.process.wiring import flow_config
from bot.settings import Settings
from separation.pool import SeparationPool
from tests.conftest import excerpt, make_video
from tests.pools import make_pool as make_pool_for_tests
from tests.telegram.fake_bot_api import TOKEN, FakeBotApi

USER_ID = 4242
ADMIN_ID = 7777


@dataclass
class TelegramHarness:
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


@pytest.fixture(scope="session")
def telegram_songs(tmp_path_factory, clip_path, ffmpeg) -> dict[str, Path]:
    """Short real-music files in the forms Telegram users send."""
    folder = tmp_path_factory.mktemp("songs")
    songs = {
        "clip.mp3": excerpt(clip_path, folder / "clip.mp3", ffmpeg, 6, "-c:a", "libmp3lame"),
        "voice.oga": excerpt(
            clip_path,
            folder / "voice.oga",
            ffmpeg,
            5,
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-f",
            "ogg",
        ),
        "long.mp3": excerpt(clip_path, folder / "long.mp3", ffmpeg, 20, "-c:a", "libmp3lame"),
    }
    video = make_video(folder / "clip.mp4", ffmpeg, clip_path, 5)
    songs["clip.mp4"] = video
    notes = folder / "notes.mp3"
    notes.write_text("these are my lyrics, not a song\n" * 50)
    songs["notes.mp3"] = notes
    truncated = folder / "cut.mp3"
    truncated.write_bytes(clip_path.read_bytes()[:250_000])
    songs["cut.mp3"] = truncated
    pdf = folder / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + b"0" * 1000)
    songs["paper.pdf"] = pdf
    return songs


def make_settings(tmp_path: Path, api: FakeBotApi, model_repo: Path, **overrides: Any) -> Settings:
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
    }
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    return Settings.model_validate(raw)


def make_pool(settings: Settings, **config: Any) -> SeparationPool:
    from bot.process.backend import separation_options
    from bot.process.wiring import audio_limits
    from separation.audio.ffmpeg import find_ffmpeg

    return make_pool_for_tests(
        ffmpeg=find_ffmpeg(settings.general.ffmpeg_path),
        tmp_root=settings.tmp_dir,
        cache_dir=settings.general.data_dir / "cache",
        model=settings.model.name,
        repo=settings.model.repo,
        limits=audio_limits(settings),
        options=separation_options(settings),
        **config,
    )


@pytest.fixture
async def telegram_bot(
    request, tmp_path, model_repo, telegram_songs
) -> AsyncIterator[TelegramHarness]:
    """Parametrize through ``request.param``: {"settings", "pool", "api"} dicts and
    "progress_interval" (seconds)."""
    options = getattr(request, "param", {}) or {}
    api = FakeBotApi()
    for name, value in options.get("api", {}).items():
        setattr(api, name, value)
    await api.start()
    settings = make_settings(tmp_path, api, model_repo, **options.get("settings", {}))
    pool = make_pool(settings, **options.get("pool", {}))
    # A short edit interval keeps tests fast; the 3 s default is tested on its own.
    config = dataclasses.replace(
        flow_config(settings), progress_interval_seconds=options.get("progress_interval", 0.2)
    )
    app = await build_app(
        settings,
        backend=pool,
        config=config,
        adapter_factories=[lambda s, flow: TelegramAdapter(s.telegram, flow)],
    )
    await app.start()
    harness = TelegramHarness(api=api, app=app, settings=settings, songs=telegram_songs)
    try:
        yield harness
    finally:
        await app.stop(grace_seconds=5)
        await api.stop()
