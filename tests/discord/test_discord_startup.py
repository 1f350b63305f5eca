"""Start-up while Discord cannot be reached (issue 11): the same treatment as Telegram:
retried with backoff for a bounded time, then one line and exit code 2, no traceback."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import bot.chat.conversation.adapter
import bot.cli.run
from bot.cli.main import main
from tests.support.discord_bot import add_servers, discord_factory, start_discord_app
from tests.support.discord_bot import make_discord_settings as settings_for
from tests.support.fake_discord_api import TOKEN, FakeDiscordApi


async def test_discord_unreachable_at_first_is_retried_until_it_answers(
    tmp_path, model_repo, caplog
):
    caplog.set_level(logging.WARNING)
    api = FakeDiscordApi()  # not listening yet: every connection attempt fails
    add_servers(api)

    async def network_comes_up() -> None:
        await asyncio.sleep(2.0)
        await api.start()

    coming_up = asyncio.create_task(network_comes_up())
    started = time.monotonic()
    app = None
    try:
        app = await start_discord_app(api, settings_for(tmp_path, model_repo))
        assert time.monotonic() - started >= 2.0
        assert api.gateway_sessions == 1
        retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
        assert retries and all(m.startswith("Discord: cannot connect (") for m in retries)
    finally:
        await coming_up
        if app is not None:
            await app.stop(5)
        await api.stop()


def test_discord_unreachable_for_good_is_one_line_and_exit_2(
    tmp_path, model_repo, capsys, monkeypatch
):
    monkeypatch.setattr(bot.chat.conversation.adapter, "START_RETRY_SECONDS", 2.0)
    monkeypatch.setenv("KARAOKE_DISCORD_TOKEN", TOKEN)
    unreachable = FakeDiscordApi()  # never started
    monkeypatch.setattr(
        bot.cli.run, "adapter_factories", lambda settings: [discord_factory(unreachable)]
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[model]\nname = "tiny"\nrepo = "{model_repo}"\ndevice = "cpu"\n'
        "[discord]\nenabled = true\n"
    )
    assert main(["--config", str(config), "run"]) == 2
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.startswith("karaoke-bot:")]
    assert len(lines) == 1, stderr
    assert re.fullmatch(
        r"karaoke-bot: (error: )?cannot reach Discord \(still failing after 2 s of retries\): .+",
        lines[0],
    )
    assert "Traceback" not in stderr
    assert TOKEN not in stderr
