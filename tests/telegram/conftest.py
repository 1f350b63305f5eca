"""A whole bot (store, pool with a tiny model, flow, PTB adapter) against the fake Bot API
(the harness and the fake live in tests/support)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.telegram_bot import TelegramHarness, running_telegram_bot


@pytest.fixture
async def telegram_bot(
    request, tmp_path, model_repo, telegram_songs
) -> AsyncIterator[TelegramHarness]:
    """Parametrize through ``request.param``: {"settings", "pool", "api"} dicts and
    "progress_interval" (seconds)."""
    options = getattr(request, "param", {}) or {}
    async with running_telegram_bot(
        tmp_path,
        model_repo,
        telegram_songs,
        settings=options.get("settings"),
        pool=options.get("pool"),
        api_options=options.get("api"),
        progress_interval=options.get("progress_interval", 0.2),
    ) as harness:
        yield harness
