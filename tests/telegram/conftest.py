"""A whole bot (store, pool with a tiny model, flow, PTB adapter) against the fake Bot API
(the harness and the fake live in tests/support)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from bot.chat.telegram.adapter import TelegramAdapter
from bot.process.app import build_app
from bot.process.wiring import flow_config
from tests.support.bot_app import make_pool
from tests.support.fake_bot_api import FakeBotApi
from tests.support.telegram_bot import TelegramHarness, make_settings


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
