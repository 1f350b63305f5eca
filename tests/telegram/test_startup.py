"""Start-up without a network (issue 11): retried with backoff for a bounded time, then one
line and exit code 2; never a traceback. A rejected token is never retried."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import socket
import time

import pytest

import bot.chat.conversation.adapter
from bot.chat.conversation.adapter import StartError
from bot.chat.telegram.adapter import TelegramAdapter, TelegramStartError
from bot.cli.main import main
from bot.process.app import build_app, run_until_stopped
from bot.process.wiring import flow_config
from tests.support.bot_app import make_pool
from tests.support.fake_bot_api import TOKEN, FakeBotApi
from tests.support.telegram_bot import make_settings


def _free_port() -> int:
    """A port nothing listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_telegram_unreachable_at_first_is_retried_until_it_answers(
    tmp_path, model_repo, caplog
):
    caplog.set_level(logging.INFO)
    api = FakeBotApi()
    api.port = _free_port()  # the URLs point there; the server comes up 2 s later
    settings = make_settings(tmp_path, api, model_repo)
    app = await build_app(
        settings,
        backend=make_pool(settings),
        config=dataclasses.replace(flow_config(settings), progress_interval_seconds=0.2),
        adapter_factories=[lambda s, flow: TelegramAdapter(s.telegram, flow)],
    )

    async def network_comes_up() -> None:
        await asyncio.sleep(2.0)
        await api.start(port=api.port)

    coming_up = asyncio.create_task(network_comes_up())
    started = time.monotonic()
    try:
        await app.start()
        assert time.monotonic() - started >= 2.0
        assert len(api.calls_to("setMyCommands")) == 1
        await api.wait_for(lambda a: a.polls > 0, within=10)
        retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
        assert retries and all(m.startswith("Telegram: cannot connect (") for m in retries)
        ours = [r.getMessage() for r in caplog.records if r.name.startswith("bot.")]
        assert not any(TOKEN.split(":")[1] in message for message in ours)
    finally:
        await coming_up
        await app.stop(5)
        await api.stop()


async def test_a_rejected_token_is_not_retried(tmp_path, model_repo, monkeypatch):
    monkeypatch.setattr(bot.chat.conversation.adapter, "START_RETRY_SECONDS", 60.0)
    api = FakeBotApi()
    await api.start()
    settings = make_settings(tmp_path, api, model_repo, telegram={"token": "999:wrong"})
    adapter = TelegramAdapter(settings.telegram, flow=None)  # type: ignore[arg-type]
    started = time.monotonic()
    try:
        with pytest.raises(TelegramStartError) as refused:
            await adapter.start()
        assert time.monotonic() - started < 5
        assert isinstance(refused.value, StartError)
        assert str(refused.value) == (
            "Telegram rejected the bot token (check KARAOKE_TELEGRAM_TOKEN)"
        )
    finally:
        await adapter.stop()
        await api.stop()


def test_telegram_unreachable_for_good_is_one_line_and_exit_2(
    tmp_path, model_repo, capsys, monkeypatch
):
    monkeypatch.setattr(bot.chat.conversation.adapter, "START_RETRY_SECONDS", 2.0)
    monkeypatch.setenv("KARAOKE_TELEGRAM_TOKEN", TOKEN)
    base = f"http://127.0.0.1:{_free_port()}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[model]\nname = "tiny"\nrepo = "{model_repo}"\ndevice = "cpu"\n'
        f'[telegram]\nenabled = true\nbase_url = "{base}/bot"\n'
        f'base_file_url = "{base}/file/bot"\n'
    )
    started = time.monotonic()
    assert main(["--config", str(config), "run"]) == 2
    assert time.monotonic() - started < 30
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.startswith("karaoke-bot:")]
    assert len(lines) == 1, stderr
    assert re.fullmatch(
        r"karaoke-bot: (error: )?cannot reach Telegram \(still failing after 2 s of retries\): .+",
        lines[0],
    )
    assert "Traceback" not in stderr
    assert TOKEN.split(":")[1] not in stderr


async def test_stop_while_still_retrying_ends_at_once(tmp_path, model_repo):
    api = FakeBotApi()
    api.port = _free_port()  # never comes up
    settings = make_settings(tmp_path, api, model_repo)
    app = await build_app(
        settings,
        backend=make_pool(settings),
        adapter_factories=[lambda s, flow: TelegramAdapter(s.telegram, flow)],
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(1.5, stop.set)  # SIGTERM from systemd
    started = time.monotonic()
    await asyncio.wait_for(run_until_stopped(app, stop, grace_seconds=5), 20)
    assert time.monotonic() - started < 10  # not after START_RETRY_SECONDS (300 s)
